"""The LLM source's meta-prompt ingredients on the tiny causal LM and real SST-2 splits: train
examples only, the errors really wrong, the own history kept through a checkpoint, and
proposals fitted to the prompt's slots with what the fit cut off recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llm_catalyst.backbones import BackboneConfig, build_backbone
from llm_catalyst.catalyst.config import load_run_config
from llm_catalyst.catalyst.domain import Candidate, rounds_of
from llm_catalyst.catalyst.runner import run
from llm_catalyst.catalyst.sources import LLMSource, RoundInput, usage_layout, words_that_fit
from llm_catalyst.catalyst.state import LoopState
from llm_catalyst.data.config import DataConfig, load_splits
from llm_catalyst.data.sampling import FewShotSplits
from llm_catalyst.llm.config import LLMConfig
from llm_catalyst.llm.gateway import LLMGateway
from llm_catalyst.llm.proposer import Proposer
from llm_catalyst.llm.scripted import ScriptedClient
from llm_catalyst.prompts.config import PromptConfig
from llm_catalyst.prompts.projection import Vocabulary
from llm_catalyst.prompts.soft_prompt import random_prompt
from llm_catalyst.records import Metrics
from llm_catalyst.training.scoring import predict
from tests.catalyst.small_runs import ANSWER, run_settings, script

ALL = ["usage", "exemplars", "trajectory", "own_history", "errors"]


@pytest.fixture(scope="module")
def splits(shared_data_dir) -> FewShotSplits:
    return load_splits(DataConfig(task="sst2", data_dir=shared_data_dir, shots=8))


@pytest.fixture(scope="module")
def backbone(splits):
    return build_backbone(BackboneConfig(model="tiny-causal-lm"), splits.task)


def _source(
    splits, backbone, answers=(), state=None, **proposer
) -> tuple[LLMSource, ScriptedClient]:
    client = ScriptedClient(list(answers))
    config = LLMConfig.model_validate(
        {
            "backend": "scripted",
            "script": "unused.json",
            "proposer": {"template": "informed", "ingredients": ALL, **proposer},
        }
    )
    return LLMSource(
        proposer=Proposer(LLMGateway(client, sleep=lambda s: None), config),
        backbone=backbone,
        vocab=Vocabulary.of(backbone),
        prompt=PromptConfig(length=10, fit="truncate+pad_repeat"),
        train=tuple(splits.train),
        seed=1,
        batch_size=16,
        state=state or LoopState.fresh("loss"),
    ), client


def _request(source: LLMSource, round_index: int = 0) -> RoundInput:
    rows = random_prompt(source.vocab, 10, seed=3).embeddings
    current = Candidate("current", rows, "current", result=Metrics(loss=0.7, accuracy=0.5, n=16))
    return RoundInput(rounds_of(3, init_round=False)[round_index], current, (), ())


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _uids(examples) -> set[str]:
    return {ex.uid for ex in examples}


def test_exemplars_and_errors_come_from_train_only(splits, backbone) -> None:
    source, _ = _source(splits, backbone, exemplars=6, errors=64, errors_scanned=1000)
    train, held_out = _uids(splits.train), _uids(splits.dev) | _uids(splits.test)
    assert "" not in train and not train & held_out
    for round_index in range(3):
        extra = source.meta_input(_request(source, round_index))
        assert len(extra.exemplars) == 6 and extra.errors
        for shown in (*extra.exemplars, *extra.errors):
            assert shown.uid in train and shown.uid not in held_out


def test_exemplars_are_seeded_label_balanced_and_the_same_every_round(splits, backbone) -> None:
    source, _ = _source(splits, backbone, exemplars=4)
    first = source.meta_input(_request(source, 0)).exemplars
    assert source.meta_input(_request(source, 2)).exemplars == first
    assert sorted(e.label for e in first) == ["great", "great", "terrible", "terrible"]
    again, _ = _source(splits, backbone, exemplars=4)
    assert again.meta_input(_request(again, 0)).exemplars == first


def test_errors_are_train_examples_the_current_prompt_gets_wrong(splits, backbone) -> None:
    source, _ = _source(splits, backbone, errors=64, errors_scanned=10)
    request = _request(source)
    errors = source.meta_input(request).errors
    by_uid = {ex.uid: ex for ex in splits.train}
    wrong = [by_uid[e.uid] for e in errors]
    predicted = predict(backbone, request.current.rows, wrong)
    assert all(p != ex.label for p, ex in zip(predicted, wrong, strict=True))
    assert all(e.predicted and e.predicted != e.label for e in errors)
    assert len(errors) <= 10
    assert source.state.compute.train_forward_passes == 10
    assert source.state.compute.dev_forward_passes == 0


def test_switched_off_errors_cost_no_forward_pass(splits, backbone) -> None:
    source, _ = _source(splits, backbone, ingredients=["trajectory", "usage"])
    assert source.meta_input(_request(source)).errors == ()
    assert source.state.compute.train_forward_passes == 0


def test_own_history_is_the_llms_scored_proposals_and_survives_a_checkpoint(
    splits, backbone, tmp_path
) -> None:
    rows = torch.zeros(10, 4)
    state = LoopState.fresh("loss")
    state.proposal_history += [
        Candidate("llm good", rows, "llm", result=Metrics(loss=0.3, accuracy=0.9, n=16)),
        Candidate("random tokens", rows, "random", result=Metrics(loss=0.1, accuracy=1.0, n=16)),
        Candidate("llm bad", rows, "llm", result=Metrics(loss=0.8, accuracy=0.4, n=16)),
    ]
    torch.save(state.to_payload(), tmp_path / "state.pt")
    restored = LoopState.from_payload(torch.load(tmp_path / "state.pt", weights_only=False))
    source, client = _source(splits, backbone, [ANSWER], state=restored)
    texts = [h.text for h in source.meta_input(_request(source)).own_history]
    assert texts == ["llm good", "llm bad"]
    source.propose(_request(source))
    meta_prompt = client.requests[0].messages[-1]["content"]
    assert meta_prompt.index('"llm bad": loss 0.800') < meta_prompt.index('"llm good": loss 0.300')
    assert "random tokens" not in meta_prompt


def test_usage_puts_the_prompt_before_the_rendered_template(splits, backbone) -> None:
    task = splits.task
    layout = usage_layout(backbone, task)
    fields = {name: "{" + name + "}" for name in task.field_names}
    assert layout.startswith("<PROMPT>" + task.template.format(**fields))
    assert layout.endswith("<LABEL WORD>")


def test_truncation_is_recorded_and_proposals_cut_to_the_same_slots_are_one(
    splits, backbone
) -> None:
    long = "Read the following movie review sentence with care and then decide"
    answer = json.dumps([long + " its sentiment.", long + " how the critic felt.", "Judge it."])
    source, _ = _source(splits, backbone, [answer], max_words=30)
    proposals = source.propose(_request(source))
    assert [c.text for c in proposals.candidates] == [long + " its sentiment.", "Judge it."]
    truncated = proposals.details["truncated"]
    assert [t["text"] for t in truncated] == [
        long + " its sentiment.",
        long + " how the critic felt.",
    ]
    assert all(t["dropped_tokens"] > 0 and long.startswith(t["kept"].strip()) for t in truncated)
    assert "exactly as" in proposals.details["rejected"][-1]["reason"]


def test_the_fitted_word_cap_fits_the_slots(splits, backbone) -> None:
    vocab = Vocabulary.of(backbone)
    cap = words_that_fit(vocab, splits.task, splits.train, 10)
    assert 1 <= cap < 10
    source, client = _source(splits, backbone, [ANSWER], max_words="fit")
    source.propose(_request(source))
    assert f"each at most {cap} words" in client.requests[0].messages[-1]["content"]


def test_a_run_shows_round_one_proposals_to_round_two(tmp_path, shared_data_dir) -> None:
    settings = run_settings(
        tmp_path,
        shared_data_dir,
        script(tmp_path, [ANSWER] * 2),
        **{
            "llm.proposer.template": "informed",
            "llm.proposer.ingredients": ["usage", "own_history", "errors"],
            "llm.proposer.errors_scanned": 5,
        },
    )
    result = run(load_run_config(None, settings))
    calls = _lines(result.run_dir / "llm_calls.jsonl")
    metas = [c["request"]["messages"][-1]["content"] for c in calls]
    assert len(metas) == 2 and "Your earlier prompts" not in metas[0]
    first = next(e for e in _lines(result.run_dir / "events.jsonl") if e["event"] == "round")
    first = first["proposals"]
    shown = sorted(first, key=lambda p: -p["dev_loss"])
    positions = [metas[1].index(f'"{p["text"]}": loss {p["dev_loss"]:.3f}') for p in shown]
    assert positions == sorted(positions)
    assert result.results.compute.train_forward_passes == 2 * 5
    assert "Nearest-token" not in metas[1]
    config = (result.run_dir / "config.yaml").read_text()
    assert "own_history" in config and "errors_scanned: 5" in config
