"""A soft prompt: the (P, d) tensor plus where it came from.

The provenance travels with the tensor into every artifact, so a saved prompt can always say how
it started.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from llm_catalyst.errors import ConfigError
from llm_catalyst.prompts.config import InitKind, PromptConfig
from llm_catalyst.prompts.projection import FitPolicy, Vocabulary, embed_text

# The tensor name PEFT uses in adapter_model.safetensors for prompt tuning.
PEFT_PROMPT_KEY = "prompt_embeddings"


@dataclass(frozen=True)
class SoftPrompt:
    """The prompt rows (P, d) in the backbone's input-embedding space, and their origin.

    ``init_token_ids`` are the vocabulary ids the rows started from (None for a slot taken from
    another prompt, absent for a tensor init); ``fit`` is what the fit policy did to a text.
    """

    embeddings: torch.Tensor
    init: InitKind
    init_text: str | None = None
    init_token_ids: tuple[int | None, ...] | None = None
    fit: dict[str, object] | None = None
    seed: int | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        _check_rows(self.embeddings, self.source or f"{self.init} init")

    @property
    def length(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def with_embeddings(self, embeddings: torch.Tensor) -> SoftPrompt:
        """The same provenance with trained rows (detached copy)."""
        return dataclasses.replace(self, embeddings=embeddings.detach().clone())

    def provenance(self) -> dict[str, object]:
        """JSON-ready description of how the prompt was initialised."""
        return {
            "init": self.init,
            "init_text": self.init_text,
            "init_token_ids": None if self.init_token_ids is None else list(self.init_token_ids),
            "fit": self.fit,
            "seed": self.seed,
            "source": self.source,
        }


def _check_rows(rows: torch.Tensor, origin: str) -> None:
    if rows.ndim != 2 or rows.shape[0] < 1:
        raise ConfigError(f"{origin}: a soft prompt is (P, d), got shape {tuple(rows.shape)}")
    if not bool(torch.isfinite(rows).all()):
        raise ConfigError(f"{origin}: the prompt holds NaN or infinite values")
    if not bool(rows.any()):
        raise ConfigError(
            f"{origin}: the prompt is all zeros, which gives NaN gradients on some backbones "
            "(SmolLM2): initialise from vocabulary rows or small random values"
        )


def random_prompt(vocab: Vocabulary, length: int, seed: int) -> SoftPrompt:
    """Rows of ``length`` distinct tokens drawn (seeded) from the ids a projection may pick."""
    candidates = vocab.allowed.nonzero().squeeze(1).cpu()
    if length > candidates.numel():
        raise ConfigError(
            f"cannot draw {length} distinct tokens from {candidates.numel()} usable ones: "
            "lower the prompt length"
        )
    generator = torch.Generator().manual_seed(seed)
    ids = candidates[torch.randperm(candidates.numel(), generator=generator)[:length]]
    rows = vocab.table.detach()[ids.to(vocab.table.device)].float().clone()
    return SoftPrompt(rows, init="random", init_token_ids=tuple(ids.tolist()), seed=seed)


def prompt_from_text(
    text: str,
    vocab: Vocabulary,
    length: int,
    policy: FitPolicy,
    current: torch.Tensor | None = None,
) -> SoftPrompt:
    """The embedding of ``text`` fitted to ``length`` slots; ``current`` is for pad_current."""
    fitted = embed_text(text, vocab, length, policy, current=current)
    return SoftPrompt(
        fitted.embeddings,
        init="text",
        init_text=text,
        init_token_ids=fitted.slot_ids,
        fit=fitted.to_dict(),
    )


def prompt_from_tensor(
    tensor: torch.Tensor, length: int, dim: int, source: str | None = None
) -> SoftPrompt:
    """A prompt from given rows, which must be exactly (length, dim)."""
    origin = source or "tensor init"
    if tuple(tensor.shape) != (length, dim):
        raise ConfigError(
            f"{origin}: the tensor has shape {tuple(tensor.shape)} but the prompt needs "
            f"({length}, {dim}) (length P, backbone embedding width d): set the prompt length "
            "to match or use a tensor saved for this backbone"
        )
    return SoftPrompt(tensor.detach().float().clone(), init="tensor", source=source)


def read_tensor_file(path: Path) -> torch.Tensor:
    """The prompt tensor in a .safetensors or .pt file, or in a PEFT adapter directory.

    A safetensors file must hold one tensor or PEFT's ``prompt_embeddings``. Reading a file does
    not check which backbone it was made for; ``artifact.load_prompt`` does.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "adapter_model.safetensors"
    if not path.is_file():
        raise ConfigError(f"{path}: no such prompt tensor file; check tensor_path")
    if path.suffix == ".safetensors":
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise ConfigError(f"{path}: not a readable safetensors file ({err})") from err
        if PEFT_PROMPT_KEY in tensors:
            return tensors[PEFT_PROMPT_KEY]
        if len(tensors) == 1:
            return next(iter(tensors.values()))
        raise ConfigError(
            f"{path}: holds tensors {sorted(tensors)}; expected one tensor or "
            f"{PEFT_PROMPT_KEY!r}: save the prompt alone"
        )
    if path.suffix in {".pt", ".pth"}:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch.load raises many unrelated types for a bad file
            raise ConfigError(f"{path}: not a readable torch file ({err})") from err
        if not isinstance(loaded, torch.Tensor):
            raise ConfigError(f"{path}: holds a {type(loaded).__name__}, not a tensor")
        return loaded
    raise ConfigError(f"{path}: unknown tensor file type; use .safetensors or .pt")


def _init_random(config: PromptConfig, vocab: Vocabulary, seed: int) -> SoftPrompt:
    return random_prompt(vocab, config.length, seed)


def _init_text(config: PromptConfig, vocab: Vocabulary, seed: int) -> SoftPrompt:
    return prompt_from_text(config.init_text or "", vocab, config.length, config.fit_policy())


def _init_tensor(config: PromptConfig, vocab: Vocabulary, seed: int) -> SoftPrompt:
    path = Path(config.tensor_path or "")
    return prompt_from_tensor(read_tensor_file(path), config.length, vocab.dim, source=str(path))


_INITIALISERS: dict[str, Callable[[PromptConfig, Vocabulary, int], SoftPrompt]] = {
    "random": _init_random,
    "text": _init_text,
    "tensor": _init_tensor,
}


def init_prompt(config: PromptConfig, vocab: Vocabulary, seed: int) -> SoftPrompt:
    """The initial prompt a config asks for; ``seed`` drives the random init."""
    return _INITIALISERS[config.init](config, vocab, seed)
