"""``propose``: try an LLM set-up on a task before a long run.

One round of LLM calls through the configured back-end (cache, budget, retries, call log). Exit
codes: 0 when the round has proposals (status ok or partial); 1 when a run would skip it (status
empty: every answer was rejected, each rejection printed with its reason; unavailable; budget);
2 for a usage error (a missing file, an unknown task, a bad config key).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from llm_catalyst.commands.options import config_overrides, consoles
from llm_catalyst.data.registry import get_task
from llm_catalyst.llm.config import load_llm_config
from llm_catalyst.llm.gateway import build_gateway
from llm_catalyst.llm.proposer import Proposer, load_pool


def propose_command(
    task: Annotated[str, typer.Option(help="built-in task name, e.g. sst2")],
    pool: Annotated[
        Path, typer.Option(help='scored prompts, JSON list or JSONL of {"text", "loss", ...}')
    ],
    llm: Annotated[
        Path | None,
        typer.Option(
            help="LLM config YAML (default: Qwen2.5-Coder-1.5B-Instruct through llama.cpp, "
            "in-process, no key)"
        ),
    ] = None,
    num: Annotated[int | None, typer.Option(help="proposals to ask for (C)")] = None,
    max_words: Annotated[int | None, typer.Option(help="word limit per proposal (W)")] = None,
    template: Annotated[
        str | None, typer.Option(help="auto, catalyst, paper, list or a Jinja file")
    ] = None,
    round_index: Annotated[
        int, typer.Option("--round", help="round number (selects sample index and seed)")
    ] = 0,
    cache: Annotated[bool | None, typer.Option(help="use the response cache")] = None,
    show_prompt: Annotated[bool, typer.Option(help="print the meta-prompt sent")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the round as JSON")] = False,
) -> None:
    """Print an LLM's prompt proposals for a task and a scored pool of prompts."""
    options = {"num": num, "max_words": max_words, "template": template, "cache": cache}
    overrides = config_overrides(options)
    config = load_llm_config(llm, {k.removeprefix("llm."): v for k, v in overrides.items()})
    the_task = get_task(task)
    scored = load_pool(pool)
    out, _ = consoles()
    proposer = Proposer(build_gateway(config), config)
    if not as_json:
        out.print(proposer.plan(rounds=1))
    if show_prompt and not as_json:
        for message in proposer.render(the_task, scored):
            out.print(Text(f"--- {message['role']} ---", style="bold"))
            out.print(message["content"])
    result = proposer.propose(the_task, scored, round_index)
    usage = proposer.gateway.budget.usage_record()
    if as_json:
        payload = asdict(result)
        payload["budget"] = usage.model_dump()
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        out.print(f"status: {result.status}" + (f" ({result.reason})" if result.reason else ""))
        for i, text in enumerate(result.proposals, start=1):
            out.print(f"{i}. {text}")
        for rejection in result.rejected:
            out.print(f"   rejected ({rejection.reason}): {rejection.text[:120]}")
        out.print(
            f"calls: {usage.fresh_calls} (cache hits {usage.cache_hits}), tokens: "
            f"{usage.prompt_tokens} in / {usage.completion_tokens} out, "
            f"cost: ${usage.cost or 0.0:.4f}, time: {result.latency_s:.1f} s"
        )
    if result.skipped:
        if result.status == "empty" and not as_json:
            _, err = consoles()
            err.print(
                "no usable proposal, so a run would skip this round (exit code 1); small LLMs "
                f"often repeat the pool: try another sample (--round {round_index + 1}) or a "
                "larger LLM (--llm)"
            )
        raise typer.Exit(code=1)
