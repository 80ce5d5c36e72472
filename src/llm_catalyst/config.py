"""One loader for every YAML configuration file: read, apply dotted overrides, validate.

A validation error names the file, the line of the offending key (from PyYAML's node marks),
the dotted key and the problem, or says that the value came from an override.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from llm_catalyst.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML, so numbers and booleans keep their type and
    ``null`` is None (which sets the key to null: an override is never "not given")."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "cannot be parsed"
        raise ConfigError(
            f"--set {text}: the value is not valid YAML ({problem}); write a list as [a, b] and "
            "quote a text that starts with [ or {"
        ) from None


def load_config(
    model: type[Model],
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    section: str | None = None,
) -> Model:
    """``path`` (or an empty tree) with dotted ``overrides`` applied, validated as ``model``.
    Every override is applied, None too: it is how ``null`` is set (callers leave out what was
    not given). With ``section``, a file may hold the model's keys at top level or under that
    key (so a whole run config serves as an LLM config too)."""
    tree, root = _read(Path(path)) if path is not None else ({}, None)
    prefix: tuple[str, ...] = ()
    if section is not None and isinstance(tree.get(section), dict):
        tree, prefix = tree[section], (section,)
    given = dict(overrides or {})
    for key, value in given.items():
        _set_dotted(tree, key, value)
    try:
        return model.model_validate(tree)
    except ValidationError as error:
        problems = [_problem(item, tree, path, root, prefix, given) for item in error.errors()]
        if len(problems) == 1:
            raise ConfigError(f"invalid configuration: {problems[0]}") from None
        raise ConfigError("invalid configuration\n  " + "\n  ".join(problems)) from None


def _read(path: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    """The file's mapping and its node tree (whose marks give each key's line)."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the file ({error.strerror})") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        tree = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", error)
        raise ConfigError(f"{path}{line}: not valid YAML ({problem})") from None
    finally:
        loader.dispose()
    if tree is None:
        return {}, None
    if not isinstance(tree, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, not {type(tree).__name__}"
        )
    return tree, root


def _set_dotted(tree: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set ``tree['a']['b'] = value`` for ``dotted_key='a.b'``, creating sections as needed."""
    *parents, leaf = dotted_key.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted_key!r}: {part!r} is not a section")
        node = child
    node[leaf] = value


def _problem(
    item: Any,
    tree: Mapping[str, Any],
    path: str | Path | None,
    root: yaml.Node | None,
    prefix: tuple[str, ...],
    overrides: Mapping[str, Any],
) -> str:
    """One line: where (file and line, or the override), the dotted key, the message."""
    loc = _keys_given(tree, tuple(str(part) for part in item["loc"]), item["type"] == "missing")
    key = ".".join(loc)
    from_override = any(key == given or key.startswith(given + ".") for given in overrides)
    if from_override or path is None:
        where = "override"
    else:
        line = _line_of(root, prefix + loc)
        where = f"{path}" + (f", line {line}" if line else "")
    return f"{where}: {'.'.join(prefix + loc) or '(top level)'}: {item['msg']}"


def _keys_given(tree: Any, loc: tuple[str, ...], missing: bool) -> tuple[str, ...]:
    """``loc`` as the user wrote it: without the branch labels pydantic puts into it.

    A tagged union (a task given as a name, a text spec or an image spec) adds its tag to the
    location (``task.text.columns``), a key the file does not have. Errors are only reported
    inside values that were given, so a part that is not a key of the mapping given there is
    such a label, except the last part of a ``missing`` error: the key the user left out.
    """
    kept: list[str] = []
    node = tree
    for i, part in enumerate(loc):
        if isinstance(node, Mapping):
            if part in node:
                node = node[part]
            elif not (missing and i == len(loc) - 1):
                continue
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        kept.append(part)
    return tuple(kept)


def _line_of(node: yaml.Node | None, loc: tuple[str, ...]) -> int | None:
    """The 1-based line of the deepest part of ``loc`` found in the YAML node tree."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line
