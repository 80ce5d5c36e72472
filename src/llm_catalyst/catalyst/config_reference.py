"""README's configuration reference, generated from the run config's Field descriptions.

Each option is described once, in its ``Field(description=...)``; README shows the table this
module renders between two marker comments, and tests/test_config_reference.py checks that it
matches. It lives beside ``RunConfig`` because it walks it. Regenerate README's table with
``python -m llm_catalyst.catalyst.config_reference --write README.md`` (no option: print it).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from llm_catalyst.catalyst.config import RunConfig

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"


def options(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every option of ``model`` as (dotted key, field): a section's own keys, then its
    subsections', each in declaration order. A subsection is no option itself; a mapping of
    sections (``llm.prices``) is one, and its values' keys follow as ``llm.prices.*.key``."""
    subsections: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        key = prefix + name
        if _is_section(field.annotation):
            subsections.append((key, field.annotation))
            continue
        yield key, field
        if get_origin(field.annotation) is dict:
            value = get_args(field.annotation)[1]
            if _is_section(value):
                subsections.append((f"{key}.*", value))
    for key, section in subsections:
        yield from options(section, key + ".")


def undescribed(model: type[BaseModel] = RunConfig) -> list[str]:
    """The dotted keys whose field has no description: each must say what it means."""
    return [key for key, field in options(model) if not (field.description or "").strip()]


def render_reference(model: type[BaseModel] = RunConfig) -> str:
    """The markdown table ``| key | default | meaning |`` of every option of ``model``."""
    missing = undescribed(model)
    if missing:
        raise ValueError(f"options without a Field description: {', '.join(missing)}")
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for key, field in options(model):
        default = "(required)" if field.is_required() else f"`{_yaml(field)}`"
        lines.append(f"| `{key}` | {default} | {_meaning(field)} |")
    return "\n".join(lines) + "\n"


def replace_marked(text: str, table: str) -> str:
    """``text`` with what lies between the two marker comments replaced by ``table``."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not (start and end):
        raise ValueError(f"the text has no {START} ... {END} markers (in that order)")
    return f"{head}{START}\n{table}{END}{tail}"


def marked(text: str) -> str:
    """What lies between the two marker comments of ``text`` ('' without them)."""
    rest = text.partition(START)[2]
    return rest.partition(END)[0] if END in rest else ""


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _yaml(field: FieldInfo) -> str:
    """The default as YAML reads it (``null``, ``true``, ``[0.9, 0.999]``)."""
    value = to_jsonable_python(field.get_default(call_default_factory=True))
    text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip()
    return text.removesuffix("...").strip()


def _meaning(field: FieldInfo) -> str:
    """The description on one line, with the Literal choices it does not name in backticks."""
    text = " ".join((field.description or "").split())
    choices = _choices(field.annotation)
    if any(f"`{choice}`" not in text for choice in choices):
        text += "; one of " + ", ".join(f"`{choice}`" for choice in choices)
    return text.replace("|", "\\|")


def _choices(annotation: Any) -> list[str]:
    """The values of every Literal in ``annotation`` (through unions, lists and Annotated)."""
    if get_origin(annotation) is Literal:
        return [str(value) for value in get_args(annotation)]
    return [choice for arg in get_args(annotation) for choice in _choices(arg)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m llm_catalyst.catalyst.config_reference",
        description="Print the configuration reference, or rewrite it in a file in place.",
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="FILE",
        help=f"replace the table between {START} and {END} in FILE (docs/config.md)",
    )
    args = parser.parse_args(argv)
    table = render_reference()
    if args.write is None:
        print(table, end="")
        return
    text = args.write.read_text(encoding="utf-8")
    args.write.write_text(replace_marked(text, table), encoding="utf-8")


if __name__ == "__main__":
    main()
