"""The instructor's service to the catalyst loop: new prompts for a task and its scored pool.

LLM failures become skipped rounds, never exceptions, every call is a distinct, reproducible
sample, each ingredient of the meta-prompt reaches the template only when it is switched on,
and a few more proposals are asked for than a round keeps; docs/design.md, "Proposals from the
instructor".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal, TypeVar

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from llm_catalyst.data.tasks import Task
from llm_catalyst.errors import ConfigError, DataError
from llm_catalyst.jsonio import read_json_items
from llm_catalyst.llm.budget import BudgetExhausted, describe_plan
from llm_catalyst.llm.client import LLMRequest, LLMUnavailable, Message, ProposalList, Usage
from llm_catalyst.llm.config import LLMConfig
from llm_catalyst.llm.gateway import LLMGateway
from llm_catalyst.llm.parsing import CHARS_PER_WORD, Cut, Method, Rejection, parse_proposals

BUILTIN_TEMPLATES = ("catalyst", "paper", "list", "informed")
_STUB = ("1.", "1)", "-", "*")

Status = Literal["ok", "partial", "empty", "unavailable", "budget"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class ScoredPrompt:
    """A prompt text with its dev loss (lower is better) and, optionally, dev accuracy."""

    text: str
    loss: float
    accuracy: float | None = None


@dataclass(frozen=True)
class LabelledText:
    """A train example as a meta-prompt shows it: its fields on one line and the right label
    word; ``predicted`` is what the current prompt made the model answer (errors only)."""

    uid: str
    text: str
    label: str
    predicted: str = ""


@dataclass(frozen=True)
class MetaInput:
    """The ingredients besides the trajectory, as the caller computed them.

    ``usage`` is the input layout with ``<PROMPT>`` where the prompt goes; ``prompt_tokens``
    the prompt's P slots; ``fitted_words`` the word cap that fits them, used when
    ``max_words`` is ``fit``.
    """

    usage: str = ""
    exemplars: tuple[LabelledText, ...] = ()
    errors: tuple[LabelledText, ...] = ()
    own_history: tuple[ScoredPrompt, ...] = ()
    prompt_tokens: int | None = None
    fitted_words: int | None = None


@dataclass(frozen=True)
class ProposalRound:
    """What one round of the instructor produced.

    ``status``: "ok" (``num_proposals`` new texts), "partial" (fewer), "empty" (the answers held
    no usable text), "unavailable" / "budget" (no answer; ``reason`` says why). A round with no
    proposals is a skipped round; the caller keeps training. ``asked``: the proposals each call
    asked for (``num_proposals`` + ``spare``); ``unused``: usable texts beyond the
    ``num_proposals`` kept; ``cut``: the proposals that were cut to the word cap
    (``max_words: fit``), each with the text the LLM wrote.
    """

    round_index: int
    proposals: tuple[str, ...]
    status: Status
    reason: str = ""
    asked: int = 0
    calls: int = 0
    cache_hits: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    raw_answers: tuple[str, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    parse_methods: tuple[Method, ...] = ()
    unused: tuple[str, ...] = ()
    cut: tuple[Cut, ...] = ()

    @property
    def skipped(self) -> bool:
        return not self.proposals


class Proposer:
    """Renders the meta-prompt, calls the LLM through the gateway, parses the answers."""

    def __init__(self, gateway: LLMGateway, config: LLMConfig, run_seed: int | None = None):
        self.gateway = gateway
        self.config = config
        self.run_seed = run_seed
        self.template_name = config.proposer.template
        if self.template_name == "auto":
            self.template_name = "catalyst" if gateway.has_chat_template else "list"
        self._template = _load_template(self.template_name)

    def plan(self, rounds: int) -> str:
        return describe_plan(rounds, self.config.proposer.calls_per_round, self.config.budget)

    def base_seed(self) -> int | None:
        """The seed of call 0 (``sampling.seed``, or the run's seed for ``seed: run``)."""
        return _configured_or_given(
            self.config.sampling.seed,
            self.run_seed,
            "llm.sampling.seed is 'run' but this proposer was given no run seed; pass "
            "Proposer(..., run_seed=N) or give a number",
        )

    def max_words(self, extra: MetaInput) -> int:
        """The word cap asked for and enforced: the configured one, or the one fitted to P."""
        return _configured_or_given(
            self.config.proposer.max_words,
            extra.fitted_words,
            "proposer.max_words is 'fit' but no prompt length is known here; give a number "
            "of words (e.g. --max-words 8)",
        )

    @property
    def asked(self) -> int:
        """Proposals a call asks for: the round's ``num_proposals`` and ``spare`` more, since a
        small LLM's copies and repeats would otherwise leave the round short."""
        settings = self.config.proposer
        return settings.num_proposals + settings.spare

    def structure(self, stub: str, max_words: int) -> ProposalList | None:
        """The JSON list a call asks for (``llm.structured``), or None: when it is off, when the
        back-end cannot constrain its answer, and for a list continuation (``stub``), whose
        answer goes on with numbered lines after "1.", which no JSON list can. The list holds
        at least the ``num_proposals`` the round keeps, at most the ones asked for."""
        if stub or not (self.config.structured and self.gateway.supports_structured):
            return None
        return ProposalList(
            self.asked, CHARS_PER_WORD * max_words, min_items=self.config.proposer.num_proposals
        )

    def render(
        self, task: Task, pool: Sequence[ScoredPrompt], extra: MetaInput = MetaInput()
    ) -> list[Message]:
        """The meta-prompt as chat messages: the rendered template as the user message, after
        the system message a template sets as ``system`` ({% set system %}...{% endset %}),
        which also takes the place of a chat template's default one (Qwen's costs 20 tokens)."""
        settings = self.config.proposer
        on = set(settings.ingredients)
        meanings = task.label_meanings or task.label_names
        labels = [
            {"name": n, "word": w.strip(), "meaning": m}
            for n, w, m in zip(
                task.label_names, task.label_words or task.label_names, meanings, strict=False
            )
        ]
        try:
            module = self._template.make_module(
                dict(
                    task=task,
                    labels=labels,
                    pool=_worst_to_best(pool, settings.max_history) if "trajectory" in on else [],
                    num_proposals=self.asked,
                    max_words=self.max_words(extra),
                    ingredients=sorted(on),
                    usage=extra.usage if "usage" in on else "",
                    prompt_tokens=extra.prompt_tokens,
                    exemplars=list(extra.exemplars) if "exemplars" in on else [],
                    errors=list(extra.errors) if "errors" in on else [],
                    own_history=_worst_to_best(extra.own_history, settings.max_history)
                    if "own_history" in on
                    else [],
                )
            )
            text, system = str(module).strip(), str(getattr(module, "system", "")).strip()
        except jinja2.TemplateError as exc:
            raise ConfigError(
                f"{self.template_name}: cannot render the meta-prompt template ({exc}); it may "
                "use task, labels (name, word, meaning), pool and own_history (text, loss, "
                "accuracy), usage, prompt_tokens, exemplars and errors (text, label, "
                "predicted), ingredients, num_proposals (the prompts to ask for) and max_words"
            ) from None
        user: Message = {"role": "user", "content": text}
        return [{"role": "system", "content": system}, user] if system else [user]

    def propose(
        self,
        task: Task,
        pool: Sequence[ScoredPrompt],
        round_index: int,
        tried: Iterable[str] = (),
        extra: MetaInput = MetaInput(),
    ) -> ProposalRound:
        settings = self.config.proposer
        max_words = self.max_words(extra)
        messages = tuple(self.render(task, pool, extra))
        stub = _list_stub(messages[-1]["content"])
        sampling = self.config.sampling
        stop = sampling.stop
        if stub:
            # A list continuation would run on past the items asked for.
            stop += (f"\n{self.asked + 1}{stub[-1]}" if stub[0].isdigit() else "\n\n",)
        structure = self.structure(stub, max_words)
        known = [h.text for h in [*pool, *extra.own_history]] + list(tried)
        echo = "\n".join(m["content"] for m in messages)
        accepted: list[str] = []
        rejected: list[Rejection] = []
        cuts: list[Cut] = []
        answers: list[str] = []
        methods: list[Method] = []
        calls = hits = 0
        usage = Usage()
        cost = latency = 0.0
        status: Status = "ok"
        reason = ""
        seed = self.base_seed()
        for k in range(settings.calls_per_round):
            index = round_index * settings.calls_per_round + k
            params = sampling.model_copy(
                update={"seed": None if seed is None else seed + index, "stop": stop}
            )
            try:
                result = self.gateway.call(
                    LLMRequest(messages, params, sample_index=index, structure=structure)
                )
            except LLMUnavailable as exc:
                status, reason = "unavailable", f"LLM unavailable: {exc}"
                break
            except BudgetExhausted as exc:
                status, reason = "budget", f"LLM budget exhausted: {exc}"
                break
            calls += 0 if result.cache_hit else 1
            hits += int(result.cache_hit)
            usage = usage + result.completion.usage
            cost += result.cost_usd
            latency += result.latency_s
            finishes = result.completion.finish_reasons
            for i, answer in enumerate(result.completion.texts):
                answers.append(answer)
                parsed = parse_proposals(
                    stub + answer,
                    max_words,
                    tried=[*known, *accepted],
                    echo=echo,
                    cut_off=i < len(finishes) and finishes[i] == "length",
                    cut_long=settings.max_words == "fit",
                )
                accepted.extend(parsed.accepted)
                rejected.extend(parsed.rejected)
                cuts.extend(parsed.cut)
                methods.append(parsed.method)
            if len(accepted) >= settings.num_proposals:
                break
        proposals = tuple(accepted[: settings.num_proposals])
        if proposals and len(proposals) < settings.num_proposals:
            reason = (reason + "; " if reason else "") + (
                f"{len(proposals)} of {settings.num_proposals} proposals were usable"
            )
            status = "partial"
        elif not proposals and status == "ok":
            status = "empty"
            reason = f"no usable proposal in {len(answers)} answer(s) ({len(rejected)} rejected)"
        return ProposalRound(
            round_index=round_index,
            proposals=proposals,
            status=status,
            reason=reason,
            asked=self.asked,
            calls=calls,
            cache_hits=hits,
            usage=usage,
            cost_usd=cost,
            latency_s=latency,
            raw_answers=tuple(answers),
            rejected=tuple(rejected),
            parse_methods=tuple(methods),
            unused=tuple(accepted[settings.num_proposals :]),
            cut=tuple(c for c in cuts if c.kept in proposals),
        )


def load_pool(path: str | Path) -> list[ScoredPrompt]:
    """A scored pool file: a JSON list, or JSONL, of ``{"text", "loss", "accuracy"?}``."""
    fix = 'each entry is {"text": "...", "loss": 0.69, "accuracy": 0.5} (accuracy optional)'
    pool = []
    for where, entry in read_json_items(path, fix):
        item = entry if isinstance(entry, dict) else {}
        text, loss, acc = item.get("text"), item.get("loss"), item.get("accuracy")
        if not isinstance(text, str) or not _is_number(loss) or not _is_number(acc, optional=True):
            raise DataError(f"{where}: not a scored prompt", path=path, fix=fix)
        pool.append(ScoredPrompt(text, float(loss), None if acc is None else float(acc)))
    return pool


def _is_number(value: object, optional: bool = False) -> bool:
    if value is None:
        return optional
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _configured_or_given(configured: _T | str, given: _T | None, missing: str) -> _T:
    """A setting that is a value or a word for one only the caller knows (``seed: run``,
    ``max_words: fit``; the word is its only string): ``configured`` itself, else ``given``.
    A config asking for a value the caller lacks is a ``ConfigError`` whose fix is ``missing``."""
    if not isinstance(configured, str):
        return configured
    if given is None:
        raise ConfigError(missing)
    return given


def _worst_to_best(prompts: Sequence[ScoredPrompt], keep: int) -> list[ScoredPrompt]:
    """OPRO order: highest loss first, so the best prompts sit next to the request."""
    return sorted(prompts, key=lambda h: h.loss, reverse=True)[-keep:]


def _list_stub(prompt: str) -> str:
    """The list marker a continuation prompt ends on ("1."), or "" for an ordinary request."""
    last = prompt.rstrip().rsplit("\n", 1)[-1].strip()
    return last if last in _STUB else ""


def _environment() -> SandboxedEnvironment:
    # Sandboxed and without autoescape: templates produce plain text, and neither a user's
    # template nor the texts put into it can reach Python objects.
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    env.filters["oneline"] = lambda value: " ".join(str(value).split())
    return env


def _load_template(name: str) -> jinja2.Template:
    env = _environment()
    if name in BUILTIN_TEMPLATES:
        source = (
            resources.files("llm_catalyst.llm")
            .joinpath(f"templates/{name}.jinja")
            .read_text("utf-8")
        )
        where = f"built-in template {name!r}"
    else:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(
                f"proposer.template {name!r} is neither a built-in template "
                f"({', '.join(BUILTIN_TEMPLATES)}, auto) nor an existing file; fix the name or path"
            )
        source = path.read_text(encoding="utf-8")
        where = str(path)
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"{where}, line {exc.lineno}: template syntax error: {exc.message}"
        ) from None
