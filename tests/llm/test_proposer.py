from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_catalyst.data.tasks import Task
from llm_catalyst.errors import ConfigError, DataError
from llm_catalyst.llm.budget import Budget
from llm_catalyst.llm.client import LLMRequest
from llm_catalyst.llm.config import LLMConfig, ProposerConfig
from llm_catalyst.llm.gateway import LLMGateway
from llm_catalyst.llm.parsing import Cut
from llm_catalyst.llm.proposer import (
    LabelledText,
    MetaInput,
    Proposer,
    ScoredPrompt,
    load_pool,
)
from llm_catalyst.llm.scripted import ScriptedClient, ScriptedStep

HISTORY = [
    ScoredPrompt("middle prompt", 0.6, 0.7),
    ScoredPrompt("worst prompt", 0.9, 0.5),
    ScoredPrompt("best prompt", 0.3, 0.9),
]


def make(steps, *, chat: bool = True, **settings) -> tuple[Proposer, ScriptedClient]:
    client = ScriptedClient(steps, chat=chat)
    sampling = settings.pop("sampling", {})
    cfg = LLMConfig.model_validate(
        {
            "backend": "scripted",
            "script": "unused.jsonl",
            "proposer": {"num_proposals": 3, "max_words": 8, **settings},
            "sampling": sampling,
        }
    )
    return Proposer(LLMGateway(client, sleep=lambda s: None), cfg), client


def content(proposer: Proposer, task: Task, history=HISTORY) -> str:
    """The user message: what the meta-prompt shows (a system message may come before it)."""
    messages = proposer.render(task, history)
    assert [m["role"] for m in messages] in (["user"], ["system", "user"])
    return messages[-1]["content"]


def test_catalyst_meta_prompt_has_task_labels_history_and_request(sentiment_task) -> None:
    proposer = make([])[0]
    system, user = proposer.render(sentiment_task, HISTORY)
    assert system == {
        "role": "system",
        "content": "You write prompts: short instructions that a language model reads before "
        "it classifies a text.",
    }
    text = user["content"]
    assert text.startswith(f"Task: {sentiment_task.description}\n")
    assert 'The model answers with a label word: "negative", "positive".' in text
    worst, middle, best = (text.index(f'"{n} prompt"') for n in ("worst", "middle", "best"))
    assert worst < middle < best  # worst to best, the best next to the request
    assert '- "best prompt": loss 0.300, accuracy 90%' in text
    unscored = content(proposer, sentiment_task, [ScoredPrompt("no accuracy", 0.45)])
    assert '- "no accuracy": loss 0.450\n' in unscored
    # It asks for the kept proposals and the spare ones, each different from all it was shown.
    assert "Write 5 new prompts, each one short sentence of at most 8 words" in text
    assert "Each must differ from every prompt above and from the others." in text
    assert text.endswith("Answer with a JSON list of 5 strings and nothing else.")


def test_label_names_follow_words_that_differ_from_them(nli_task) -> None:
    text = content(make([])[0], nli_task)
    assert 'label word: "yes" (entailment), "no" (not_entailment).' in text


def test_history_keeps_the_best_entries(sentiment_task) -> None:
    text = content(make([], max_history=2)[0], sentiment_task)
    assert "worst prompt" not in text
    assert "middle prompt" in text and "best prompt" in text


def test_paper_template_reproduces_the_reference_wording(sentiment_task) -> None:
    text = content(make([], template="paper", spare=0)[0], sentiment_task)
    assert text.startswith("Hi GPT, assume you are a prompt pattern learner.")
    assert "Templates: worst prompt\nLoss: 0.900\nAccuracy: 0.500" in text
    assert text.index("worst prompt") < text.index("best prompt")
    assert "- Keep every template under 8 words" in text
    assert "- Generate 3 templates that potentially have better" in text
    assert sentiment_task.description not in text  # the reference has no task description


def test_base_models_get_list_continuation(sentiment_task) -> None:
    proposer, client = make([" Judge the review.\n2. Say the mood.\n3. Rate it.\n"], chat=False)
    assert proposer.template_name == "list"
    assert content(proposer, sentiment_task).endswith("\n1.")
    result = proposer.propose(sentiment_task, HISTORY, 0)
    assert result.proposals == ("Judge the review.", "Say the mood.", "Rate it.")
    assert client.requests[0].params.stop == ("\n6.",)  # stop after the items asked for


def test_chat_models_get_the_catalyst_template_by_default() -> None:
    assert make([])[0].template_name == "catalyst"


def test_user_template_file(tmp_path, sentiment_task) -> None:
    path = tmp_path / "mine.jinja"
    path.write_text(
        "{{ task.name }}: {% for h in pool %}[{{ h.text }}]{% endfor %} x{{ num_proposals }}"
    )
    text = content(make([], template=str(path))[0], sentiment_task)
    assert text == "toy-sentiment: [worst prompt][middle prompt][best prompt] x5"


def test_a_template_may_set_the_system_message(tmp_path, sentiment_task) -> None:
    path = tmp_path / "system.jinja"
    path.write_text("{% set system %}Be brief.{% endset %}Task: {{ task.name }}")
    proposer, client = make(['["Be brief", "Judge it"]'], template=str(path))
    assert proposer.render(sentiment_task, HISTORY) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Task: toy-sentiment"},
    ]
    result = proposer.propose(sentiment_task, HISTORY, 0)
    assert client.requests[0].messages[0]["role"] == "system"
    assert result.proposals == ("Judge it",)
    assert result.rejected[0].reason == "copied from the meta-prompt"


def test_template_errors_name_the_file_and_line(tmp_path, sentiment_task) -> None:
    with pytest.raises(ConfigError, match="neither a built-in template"):
        make([], template=str(tmp_path / "missing.jinja"))
    broken = tmp_path / "broken.jinja"
    broken.write_text("line one\n{% for x in %}\n")
    with pytest.raises(ConfigError, match=r"broken\.jinja, line 2: template syntax error"):
        make([], template=str(broken))
    typo = tmp_path / "typo.jinja"
    typo.write_text("{{ task.nmae }}")
    with pytest.raises(ConfigError, match=r"typo\.jinja: cannot render"):
        content(make([], template=str(typo))[0], sentiment_task)


def test_user_templates_are_sandboxed(tmp_path, sentiment_task) -> None:
    path = tmp_path / "escape.jinja"
    path.write_text("{{ task.render.__globals__ }}")
    with pytest.raises(ConfigError, match="cannot render"):
        content(make([], template=str(path))[0], sentiment_task)


def test_sample_index_and_seed_per_call(sentiment_task) -> None:
    steps = ['["a one"]', '["b two"]', '["c three"]', '["d four"]']
    proposer, client = make(steps, calls_per_round=2, sampling={"seed": 100})
    proposer.propose(sentiment_task, HISTORY, round_index=0)
    proposer.propose(sentiment_task, HISTORY, round_index=1)
    assert [r.sample_index for r in client.requests] == [0, 1, 2, 3]
    assert [r.params.seed for r in client.requests] == [100, 101, 102, 103]
    unseeded, client = make(['["x"]'], sampling={"seed": None})
    unseeded.propose(sentiment_task, HISTORY, 0)
    assert client.requests[0].params.seed is None


def test_seed_run_takes_the_runs_seed_as_the_base(sentiment_task) -> None:
    client = ScriptedClient(['["a one"]', '["b two"]'])
    cfg = LLMConfig.model_validate(
        {"backend": "scripted", "script": "unused.jsonl", "sampling": {"seed": "run"}}
    )
    proposer = Proposer(LLMGateway(client, sleep=lambda s: None), cfg, run_seed=7)
    proposer.propose(sentiment_task, HISTORY, round_index=0)
    proposer.propose(sentiment_task, HISTORY, round_index=1)
    assert [r.params.seed for r in client.requests] == [7, 8]
    without_seed = Proposer(LLMGateway(ScriptedClient([]), sleep=lambda s: None), cfg)
    with pytest.raises(ConfigError, match="'run' but this proposer was given no run seed"):
        without_seed.propose(sentiment_task, HISTORY, 0)
    with pytest.raises(ValueError, match=r"sampling\.seed"):
        LLMConfig.model_validate({"sampling": {"seed": "runs"}})
    with pytest.raises(ValueError, match="not 'run'"):
        LLMRequest(({"role": "user", "content": "x"},), cfg.sampling)


def test_more_calls_until_enough_proposals(sentiment_task) -> None:
    proposer, client = make(
        [
            '["Judge it", "best prompt"]',
            '["Judge it", "Say it", "Rate it"]',
            '["Score it", "Weigh it"]',
            '["never asked"]',
        ],
        calls_per_round=4,
    )
    result = proposer.propose(sentiment_task, HISTORY, 0, tried=["Say it"])
    assert result.status == "ok"
    assert result.proposals == ("Judge it", "Rate it", "Score it")
    assert result.calls == 3 and len(client.requests) == 3
    assert [(r.text, r.reason) for r in result.rejected] == [
        ("best prompt", "already tried"),
        ("Judge it", "already tried"),
        ("Say it", "already tried"),
    ]


def test_spare_proposals_are_asked_for_and_the_first_usable_ones_kept(sentiment_task) -> None:
    answer = json.dumps(["best prompt", "Judge it", "judge it.", "Say it", "Rate it", "Weigh it"])
    proposer, client = make([answer])  # 3 kept, 2 spare
    result = proposer.propose(sentiment_task, HISTORY, 0)
    assert result.asked == 5 and "Write 5 new prompts" in client.requests[0].messages[-1]["content"]
    assert (result.status, result.proposals) == ("ok", ("Judge it", "Say it", "Rate it"))
    assert result.unused == ("Weigh it",)
    assert [r.reason for r in result.rejected] == ["already tried", "duplicate"]


def test_fewer_proposals_than_asked_is_partial(sentiment_task) -> None:
    proposer, _ = make(['["Judge it", "Say it"]'])
    result = proposer.propose(sentiment_task, HISTORY, 0)
    assert (result.status, result.proposals) == ("partial", ("Judge it", "Say it"))
    assert result.reason == "2 of 3 proposals were usable"
    assert not result.skipped


def test_failure_after_a_good_call_keeps_what_was_found(sentiment_task) -> None:
    proposer, _ = make(
        ['["Judge it"]', ScriptedStep(error="unavailable", message="down")], calls_per_round=2
    )
    result = proposer.propose(sentiment_task, HISTORY, 0)
    assert result.status == "partial"
    assert result.proposals == ("Judge it",)
    assert result.reason.startswith("LLM unavailable: down")


def test_unavailable_llm_is_a_skipped_round_not_an_exception(sentiment_task) -> None:
    proposer, _ = make([ScriptedStep(error="transient", message="HTTP 503")] * 4)
    result = proposer.propose(sentiment_task, HISTORY, 0)
    assert result.skipped and result.status == "unavailable"
    assert "HTTP 503" in result.reason and "gave up after 4 attempt(s)" in result.reason


def test_budget_stops_llm_calls_while_the_run_goes_on(sentiment_task) -> None:
    client = ScriptedClient([f'["prompt number {i}"]' for i in range(10)])
    cfg = LLMConfig.model_validate(
        {
            "backend": "scripted",
            "script": "unused.jsonl",
            "budget": {"max_calls": 2},
            "proposer": {"num_proposals": 1},
        }
    )
    proposer = Proposer(LLMGateway(client, budget=Budget(cfg.budget)), cfg)
    rounds = [proposer.propose(sentiment_task, HISTORY, r) for r in range(5)]
    assert [r.status for r in rounds] == ["ok", "ok", "budget", "budget", "budget"]
    assert "LLM budget exhausted: LLM call cap reached" in rounds[2].reason
    assert len(client.requests) == 2
    assert "at most 5 LLM call(s); max_calls=2 will stop LLM calls early" in proposer.plan(5)


def test_load_pool_json_and_jsonl(tmp_path) -> None:
    entries = [{"text": "a", "loss": 0.5, "accuracy": 0.75}, {"text": "b", "loss": 1}]
    as_list = tmp_path / "h.json"
    as_list.write_text(json.dumps(entries))
    as_lines = tmp_path / "h.jsonl"
    as_lines.write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    expected = [ScoredPrompt("a", 0.5, 0.75), ScoredPrompt("b", 1.0, None)]
    assert load_pool(as_list) == load_pool(as_lines) == expected


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"text": "a", "loss": 0.5}\n{"text": "b"}\n', "line 2: not a scored prompt"),
        ('{"text": "a", "loss": NaN}\n', "line 1: not a scored prompt"),
        ('[{"text": "a", "loss": 0.5}, {"text": 3, "loss": 1}]', "item 2: not a scored prompt"),
        ('{"text": "a", "loss": 0.5}\n{oops\n', "line 2: not valid JSON"),
    ],
)
def test_bad_history_files_name_the_entry(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(text)
    with pytest.raises(DataError, match=where):
        load_pool(path)


# -- ingredients ---------------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"
# What each ingredient shows in the informed template, and a text only it puts there.
EXTRA = MetaInput(
    usage="<PROMPT>Review: {sentence}\nSentiment: <LABEL WORD>",
    exemplars=(LabelledText("train-1", "sentence: a warm, funny film", "positive"),),
    errors=(LabelledText("train-2", "sentence: dull and slow", "negative", "positive"),),
    own_history=(ScoredPrompt("my older try", 0.5, 0.6), ScoredPrompt("my best try", 0.2, 0.95)),
    prompt_tokens=10,
    fitted_words=6,
)
MARKERS = {
    "usage": "Sentiment: <LABEL WORD>",
    "exemplars": "a warm, funny film",
    "errors": "dull and slow",
    "trajectory": "worst prompt",
    "own_history": "my older try",
}


def test_default_renders_the_meta_prompts_of_before_the_ingredients(sentiment_task) -> None:
    """A copy of the paper and list templates' renderings, made before ingredients existed
    (4 proposals asked, no spare); the catalyst template has been shortened since."""
    expected = json.loads((FIXTURES / "meta_prompts_before_ingredients.json").read_text("utf-8"))
    history = [*HISTORY, ScoredPrompt("no accuracy", 0.45)]
    for template, chat in (("paper", True), ("list", False)):
        cfg = LLMConfig.model_validate(
            {
                "backend": "scripted",
                "script": "x",
                "proposer": {"template": template, "spare": 0},
            }
        )
        proposer = Proposer(LLMGateway(ScriptedClient([], chat=chat)), cfg)
        assert proposer.config.proposer.ingredients == ["trajectory"]
        rendered = proposer.render(sentiment_task, history, EXTRA)[0]["content"]
        assert rendered == expected[template], template


@pytest.mark.parametrize("ingredient", sorted(MARKERS))
def test_each_ingredient_appears_only_when_switched_on(sentiment_task, ingredient) -> None:
    alone = make([], template="informed", ingredients=[ingredient])[0]
    text = content_with(alone, sentiment_task)
    assert MARKERS[ingredient] in text
    assert [name for name, marker in MARKERS.items() if marker in text] == [ingredient]
    others = [name for name in MARKERS if name != ingredient]
    without = content_with(make([], template="informed", ingredients=others)[0], sentiment_task)
    assert MARKERS[ingredient] not in without
    assert all(MARKERS[name] in without for name in others)


def content_with(proposer: Proposer, task: Task) -> str:
    return proposer.render(task, HISTORY, EXTRA)[0]["content"]


def test_informed_template_shows_usage_labels_and_the_token_budget(sentiment_task) -> None:
    text = content_with(make([], template="informed", ingredients=["usage"])[0], sentiment_task)
    assert "<PROMPT>Review: {sentence}\nSentiment: <LABEL WORD>" in text
    assert "The model reads only the first 10 tokens of a prompt." in text
    assert '"positive": the review is favourable' in text
    assert "nearest-token" not in text.lower()


def test_trajectory_is_introduced_as_nearest_token_readings(sentiment_task) -> None:
    proposer = make([], template="informed", ingredients=["trajectory"])[0]
    text = content_with(proposer, sentiment_task)
    assert "Nearest-token readings of the continuous prompt" in text
    assert "may not read as language" in text


def test_own_history_is_ordered_worst_to_best_and_kept_apart(sentiment_task) -> None:
    proposer = make([], template="informed", ingredients=["own_history"])[0]
    text = content_with(proposer, sentiment_task)
    assert text.index('"my older try": loss 0.500') < text.index('"my best try": loss 0.200')
    assert "accuracy 95.0%" in text


def test_errors_show_the_right_label_and_the_models_answer(sentiment_task) -> None:
    text = content_with(make([], template="informed", ingredients=["errors"])[0], sentiment_task)
    assert 'sentence: dull and slow -> right: "negative", the model said: "positive"' in text


def test_fitted_word_cap_is_asked_for_and_cuts_what_is_longer(sentiment_task) -> None:
    long = "Decide whether the critic liked the film or not"
    answer = json.dumps(["one two three four five six", long])
    proposer, _ = make([answer], template="informed", max_words="fit")
    assert "each at most 6 words" in content_with(proposer, sentiment_task)
    result = proposer.propose(sentiment_task, HISTORY, 0, extra=EXTRA)
    assert result.proposals == (
        "one two three four five six",
        "Decide whether the critic liked the",
    )
    assert result.rejected == ()
    assert result.cut == (Cut(long, "Decide whether the critic liked the"),)
    with pytest.raises(ConfigError, match="no prompt length is known"):
        proposer.render(sentiment_task, HISTORY)


def test_a_numeric_word_cap_rejects_what_is_longer(sentiment_task) -> None:
    """The paper's recipe: a proposal over its word cap is not used."""
    answer = json.dumps(["one two three four five six", "one two three four five six seven"])
    proposer, _ = make([answer], template="informed", max_words=6)
    result = proposer.propose(sentiment_task, HISTORY, 0, extra=EXTRA)
    assert result.proposals == ("one two three four five six",)
    assert result.rejected[0].reason == "too long (7 words > 6)"
    assert result.cut == ()


def test_ingredients_other_than_the_trajectory_need_a_template_that_shows_them() -> None:
    for template in ("auto", "catalyst", "paper", "list"):
        with pytest.raises(ValueError, match="use template 'informed'"):
            ProposerConfig(template=template, ingredients=["trajectory", "usage"])
    with pytest.raises(ValueError, match="listed twice"):
        ProposerConfig(template="informed", ingredients=["errors", "errors"])
    assert ProposerConfig(template="informed", ingredients=[]).ingredients == []
