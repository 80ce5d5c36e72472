from __future__ import annotations

import json
import time

import pytest

from llm_catalyst.llm.parsing import MAX_ANSWER_CHARS, Cut, parse_proposals, prompt_key


def reasons(result) -> dict[str, str]:
    return {r.text: r.reason for r in result.rejected}


def test_json_list_inside_chatty_answer_and_code_fence() -> None:
    raw = (
        "Sure! Here are three new prompts:\n```json\n"
        '["Classify the review.", "Is this review positive?", "Rate the sentiment."]\n```\n'
        "Hope this helps [really]."
    )
    result = parse_proposals(raw, max_words=10)
    assert result.method == "json"
    assert result.accepted == (
        "Classify the review.",
        "Is this review positive?",
        "Rate the sentiment.",
    )
    assert result.rejected == ()


def test_list_markers_inside_json_strings_are_removed() -> None:
    raw = '["1. Judge the review.", "2) \\"Say the mood.\\"", "- Rate it"]'
    assert parse_proposals(raw, max_words=10).accepted == (
        "Judge the review.",
        "Say the mood.",
        "Rate it",
    )


def test_json_list_of_objects_uses_their_prompt_field() -> None:
    raw = '[{"prompt": "Judge the tone."}, {"text": "Say if it is good."}, {"score": 3}]'
    assert parse_proposals(raw, max_words=10).accepted == ("Judge the tone.", "Say if it is good.")


def test_numbered_lines_with_preamble_quotes_and_labels() -> None:
    raw = (
        "Here are some prompts:\n"
        '1. "Decide whether the review is positive."\n'
        "2) Prompt: Tell me the sentiment.\n"
        "(3) <INS> Is the movie good? </INS>\n"
        "- **Read and judge the review**\n"
        "I hope these work well!"
    )
    result = parse_proposals(raw, max_words=10)
    assert result.method == "lines"
    assert result.accepted == (
        "Decide whether the review is positive.",
        "Tell me the sentiment.",
        "Is the movie good?",
        "Read and judge the review",
    )


def test_truncated_json_list_keeps_its_complete_strings() -> None:
    raw = '[\n  "First prompt here.",\n  "Second one.",\n  "Third is cut'
    result = parse_proposals(raw, max_words=10)
    assert result.method == "json_partial"
    assert result.accepted == ("First prompt here.", "Second one.")


def test_plain_lines_prefer_labelled_or_quoted_lines() -> None:
    raw = 'Prompt: "Judge the review."\nLoss: 0.4, accuracy: 80%\n"Say the sentiment."'
    assert parse_proposals(raw, max_words=10).accepted == (
        "Judge the review.",
        "Say the sentiment.",
    )


def test_plain_lines_without_markers_drop_preambles() -> None:
    raw = "New prompts:\nJudge the review\nSay the sentiment"
    result = parse_proposals(raw, max_words=10)
    assert result.accepted == ("Judge the review", "Say the sentiment")


def test_rejections_say_why() -> None:
    raw = (
        '["", "1234 !!", "one two three four five six", "Tab\\u0007bell", '
        '"Good prompt", "good prompt.", "Old prompt", "Copied line"]'
    )
    result = parse_proposals(
        raw, max_words=5, tried=["old PROMPT"], echo="Task text\nCopied line\n"
    )
    assert result.accepted == ("Good prompt",)
    assert reasons(result) == {
        "": "empty",
        "1234 !!": "no words",
        "one two three four five six": "too long (6 words > 5)",
        "Tab\u0007bell": "non-printable characters",
        "good prompt.": "duplicate",
        "Old prompt": "already tried",
        "Copied line": "copied from the meta-prompt",
    }


def test_character_limit() -> None:
    long_word = "x" * 50
    result = parse_proposals(f'["{long_word}", "short"]', max_words=3, max_chars=40)
    assert result.accepted == ("short",)
    assert reasons(result)[long_word] == "too long (50 characters > 40)"


def test_cut_long_cuts_at_a_word_boundary_instead_of_rejecting() -> None:
    """``max_words: fit``: what fits the slots is kept, and the record keeps what was written."""
    written = [
        "Decide whether this movie review is positive or negative",
        "Read it, then, decide",
        "aaaaaaaaaa bbbbbbbbbb cccccccccc",
        "x" * 50,
        "short one",
    ]
    result = parse_proposals(json.dumps(written), max_words=3, max_chars=25, cut_long=True)
    kept = ("Decide whether this", "Read it, then", "aaaaaaaaaa bbbbbbbbbb", "x" * 25, "short one")
    assert result.accepted == kept
    assert result.rejected == ()
    assert result.cut == tuple(Cut(w, k) for w, k in zip(written[:4], kept[:4], strict=True))
    plain = parse_proposals(json.dumps(written), max_words=3, max_chars=25)
    assert plain.accepted == ("short one",) and plain.cut == ()
    assert reasons(plain)[written[0]] == "too long (9 words > 3)"


def test_a_cut_text_is_checked_as_any_other() -> None:
    raw = json.dumps(["Judge the review now", "Judge the review later", "Say it well please"])
    result = parse_proposals(raw, max_words=3, tried=["say it well"], cut_long=True)
    assert result.accepted == ("Judge the review",)
    assert reasons(result) == {
        "Judge the review later": "duplicate once cut to 'Judge the review'",
        "Say it well please": "already tried once cut to 'Say it well'",
    }
    assert result.cut == (Cut("Judge the review now", "Judge the review"),)


def test_cut_off_answer_drops_its_unfinished_last_line() -> None:
    raw = "1. Judge the review.\n2. Say the sentiment.\n3. Decide if the"
    assert parse_proposals(raw, 10).accepted[-1] == "Decide if the"
    result = parse_proposals(raw, 10, cut_off=True)
    assert result.accepted == ("Judge the review.", "Say the sentiment.")
    assert reasons(result)["Decide if the"] == "cut off by the token limit"


def test_nothing_usable() -> None:
    result = parse_proposals("   \n\n", max_words=5)
    assert result.method == "none"
    assert result.accepted == result.rejected == ()


def test_template_braces_and_shell_text_stay_inert_data(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    evil = [
        "{{ config.__class__ }} {sentence} $(touch pwned) `touch pwned2`",
        "{% for x in range(3) %}loop{% endfor %}; rm -rf ./*",
    ]
    raw = "[" + ", ".join(f'"{e}"' for e in evil) + "]"
    result = parse_proposals(raw, max_words=20)
    assert result.accepted == tuple(evil)
    assert list(tmp_path.iterdir()) == []


def test_huge_answer_is_bounded_in_time() -> None:
    raw = ("[" * 10 + "x " * 200 + "\n") * 5000  # about 2 MB of junk
    start = time.perf_counter()
    result = parse_proposals(raw, max_words=20)
    assert time.perf_counter() - start < 2.0
    assert result.accepted == ()
    assert len(raw) > MAX_ANSWER_CHARS


@pytest.mark.parametrize(
    ("a", "b"), [("Judge it.", "judge  it"), ("Is it GOOD?", "is it good"), (" x ", "x!")]
)
def test_prompt_key_ignores_case_spacing_and_end_punctuation(a: str, b: str) -> None:
    assert prompt_key(a) == prompt_key(b)


def test_echoed_score_text_is_dropped_and_a_proposal_of_nothing_else_rejected() -> None:
    raw = json.dumps(
        [
            "Loss: 0.52, Accuracy: 95.8%",
            "Classify the review.\nLoss: 0.41, accuracy: 80.0%",
            '"Is the critic pleased?" (loss 0.410)',
            "Name the mood - loss 0.3",
            "Say whether the movie is worth the loss of time",
        ]
    )
    result = parse_proposals(raw, max_words=20)
    assert result.accepted == (
        "Classify the review.",
        "Is the critic pleased?",
        "Name the mood",
        "Say whether the movie is worth the loss of time",
    )
    assert result.rejected[0].reason == "nothing but echoed score text"


def test_a_score_line_after_listed_prompts_is_not_a_prompt() -> None:
    result = parse_proposals("Judge the review.\nLoss: 0.52, Accuracy: 95.8%\nRate it.", 20)
    assert result.accepted == ("Judge the review.", "Rate it.")
    assert reasons(result) == {"": "nothing but echoed score text"}
