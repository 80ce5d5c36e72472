"""docs/config.md, the configuration reference, is the one rendered from the Field descriptions.

An option added without a description, or the table edited by hand, fails here; the fix
is a description and ``python -m llm_catalyst.catalyst.config_reference --write docs/config.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from llm_catalyst.catalyst.config import RunConfig
from llm_catalyst.catalyst.config_reference import (
    END,
    START,
    main,
    marked,
    options,
    render_reference,
    replace_marked,
    undescribed,
)

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_every_option_has_a_description() -> None:
    assert undescribed(RunConfig) == []


def test_readme_shows_the_generated_reference() -> None:
    shown = marked(REFERENCE.read_text(encoding="utf-8"))
    assert shown == "\n" + render_reference(), (
        "docs/config.md differs from the Field descriptions; regenerate it: "
        "python -m llm_catalyst.catalyst.config_reference --write docs/config.md"
    )


def test_every_section_is_walked_and_nested_fields_are_rows() -> None:
    keys = [key for key, _ in options(RunConfig)]
    for key in ("method", "data.task", "backbone.clip.context", "loop.probe_top"):
        assert key in keys
    for key in ("llm.sampling.seed", "llm.proposer.ingredients", "llm.prices.*.input_per_mtok"):
        assert key in keys
    assert not {"backbone.clip", "llm.sampling", "llm.proposer"} & set(keys)
    assert len(keys) == len(set(keys))


class _Inner(BaseModel):
    depth: int = Field(2, description="how deep")


class _Toy(BaseModel):
    name: str = Field(description="what it is called")
    mode: Literal["fast", "slow"] = Field("fast", description="how it runs")
    listed: Literal["a", "b"] = Field("a", description="`a` or `b`")
    path: Path | None = Field(None, description="a | b")
    pair: tuple[float, float] = Field((0.9, 0.999), description="two numbers")
    on: bool = Field(True, description="switch")
    inner: _Inner = _Inner()


def test_rows_read_as_yaml_with_choices_and_required_keys() -> None:
    rows = render_reference(_Toy).splitlines()
    assert rows[:2] == ["| key | default | meaning |", "|---|---|---|"]
    assert rows[2:] == [
        "| `name` | (required) | what it is called |",
        "| `mode` | `fast` | how it runs; one of `fast`, `slow` |",
        "| `listed` | `a` | `a` or `b` |",
        "| `path` | `null` | a \\| b |",
        "| `pair` | `[0.9, 0.999]` | two numbers |",
        "| `on` | `true` | switch |",
        "| `inner.depth` | `2` | how deep |",
    ]


def test_an_option_without_a_description_is_refused() -> None:
    class Bare(BaseModel):
        inner: _Inner = _Inner()
        loose: int = 1

    assert undescribed(Bare) == ["loose"]
    with pytest.raises(ValueError, match="loose"):
        render_reference(Bare)


def test_write_replaces_only_the_marked_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nprose\n\n{START}\n| old |\n{END}\n\nafter\n", encoding="utf-8")
    main(["--write", str(readme)])
    text = readme.read_text(encoding="utf-8")
    assert text == f"# Title\n\nprose\n\n{START}\n{render_reference()}{END}\n\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        replace_marked("no markers here", "| table |\n")
