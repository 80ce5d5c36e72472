"""The resolved configuration of a run: one pydantic model per section, composed here.

Each section lives beside the code it configures (data, backbones, prompts, training); this
module only composes them, loads YAML, applies command-line overrides and turns validation
errors into messages that name the file, the key and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from llm_catalyst.backbones.config import BackboneConfig
from llm_catalyst.data.config import DataConfig
from llm_catalyst.errors import ConfigError
from llm_catalyst.prompts.config import PromptConfig
from llm_catalyst.training.config import TrainConfig


class TuneConfig(BaseModel):
    """Everything one prompt-tuning run needs; written verbatim to the run directory."""

    model_config = ConfigDict(extra="forbid")

    data: DataConfig
    backbone: BackboneConfig = BackboneConfig()
    prompt: PromptConfig = PromptConfig()
    train: TrainConfig = TrainConfig()
    output_dir: Path = Path("runs")
    evaluate_zero_shot: bool = True
    max_test_examples: int | None = None


def format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {key}: {item['msg']}")
    return "\n".join(lines)


def set_dotted(tree: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set ``tree['a']['b'] = value`` for ``dotted_key='a.b'``, creating sections as needed."""
    *parents, leaf = dotted_key.split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"cannot set {dotted_key!r}: {part!r} is not a section")
        node = child
    node[leaf] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value parsed as YAML, so numbers and booleans keep their type."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    return key.strip(), yaml.safe_load(raw)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; check the path")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of sections, not {type(tree).__name__}"
        )
    return tree


def load_tune_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TuneConfig:
    """Read an optional YAML file, apply dotted overrides, validate."""
    tree = read_yaml(path) if path is not None else {}
    for key, value in (overrides or {}).items():
        if value is not None:
            set_dotted(tree, key, value)
    try:
        return TuneConfig.model_validate(tree)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, str(path or "options"))) from None
