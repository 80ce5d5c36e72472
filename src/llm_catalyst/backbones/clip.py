"""CLIP with CoOp-style learnable context (Zhou et al., "Learning to Prompt for Vision-Language
Models", IJCV 2022), on transformers' ``CLIPModel``.

Class scores are ``logit_scale.exp() * cos(image feature, text feature of class c)``; the text
of class c is [SOS], the context vectors (the soft prompt) around the class name's tokens, a
full stop and [EOS]. The image tower is frozen: its features are computed once and cached
(``features_cache``) unless ``features="augment"`` re-encodes augmented images every step, as
CoOp does. Image decoding and augmentation live in ``clip_images``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import CLIPModel

from llm_catalyst.backbones.base import Batch, FrozenEmbeddingsMixin, NoHeadMixin, freeze
from llm_catalyst.backbones.clip_images import (
    augmented_pixel_values,
    pixel_values,
    preprocessing_key,
)
from llm_catalyst.backbones.clip_options import CLIPOptions
from llm_catalyst.backbones.features_cache import (
    FeatureStore,
    default_feature_dir,
    module_fingerprint,
)
from llm_catalyst.data.tasks import IMAGE_FIELD, Example, Task, is_image_task
from llm_catalyst.errors import BackboneError

_PLACEHOLDER = re.compile(r"\{(?:class|classname|label)?\}")


def context_text(text: str) -> str:
    """The words of a prompt template that become context slots.

    "a satellite photo of a {class}." -> "a satellite photo of a"; "{class} seen from above."
    -> "seen from above". A text without a placeholder (a projected prompt) is kept as is.
    """
    if not _PLACEHOLDER.search(text):
        return text
    joined = " ".join(part.strip() for part in _PLACEHOLDER.split(text))
    return re.sub(r"\s+", " ", joined).strip().rstrip(".").strip()


@dataclass(frozen=True)
class _Layout:
    """Token ids (C, L) of every class's sequence for M context slots, where the slots are
    (C, M) and where [EOS] is (C,)."""

    ids: torch.Tensor
    slots: torch.Tensor
    eos: torch.Tensor


class CLIPBackbone(FrozenEmbeddingsMixin, NoHeadMixin):
    """The Backbone protocol for CLIP with CoOp context vectors."""

    _head_refusal = (
        "cannot load into a CLIP backbone, which trains the context only\n  fix: load the "
        "artifact with the backbone it was trained with"
    )

    def __init__(
        self,
        model: CLIPModel,
        tokenizer: Any,
        processor: Any,
        task: Task,
        *,
        name: str = "",
        options: CLIPOptions | None = None,
    ) -> None:
        if not is_image_task(task):
            raise BackboneError(
                f"task {task.name!r} has text fields {list(task.field_names)}, but a CLIP "
                f"backbone classifies images (one field {IMAGE_FIELD!r} holding the image path)\n"
                "  fix: use an image task (eurosat or an ImageTaskSpec), or a text backbone"
            )
        self.clip = freeze(model)
        self._tokenizer = tokenizer
        self.processor = processor
        self.task = task
        self.name = name or model.config.name_or_path
        self.options = options or CLIPOptions()
        self._embed = model.text_model.embeddings.token_embedding
        self._max_positions = model.config.text_config.max_position_embeddings
        self._training = False
        self._layouts: dict[int, _Layout] = {}
        self._text_memo: tuple[str, torch.Tensor] | None = None
        self._scale = model.logit_scale.detach().exp()
        self._sos = self._special_id("bos")
        self._eos = self._special_id("eos")
        pad = tokenizer.pad_token_id
        self._pad = self._eos if pad is None else int(pad)
        self._class_ids = [self._words(name, "class name") for name in task.label_words]
        self._dot = self._words(".", "full stop")
        hard = self._plain_ids(task.template.format())
        with torch.no_grad():
            self._hard_context = self._embed.weight[torch.tensor(hard, dtype=torch.long)].clone()
        self.image_tower_calls = 0
        self.images_encoded = 0
        self.feature_store = self._make_store()
        self._check_text_tower_matches_model()

    def context_text(self, text: str) -> str:
        """See the module function ``context_text``; projection calls it before embedding."""
        return context_text(text)

    # -- tokens and layouts ---------------------------------------------------------------------

    def _special_id(self, which: str) -> int:
        value = getattr(self._tokenizer, f"{which}_token_id", None)
        if value is None:
            raise BackboneError(
                f"the tokenizer of {self.name!r} has no {which} token; CLIP's text sequences "
                "start with <|startoftext|> and end with <|endoftext|>\n"
                "  fix: load the CLIP checkpoint's own tokenizer"
            )
        return int(value)

    def _plain_ids(self, text: str) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _words(self, text: str, what: str) -> list[int]:
        ids = self._plain_ids(text)
        if not ids:
            raise BackboneError(
                f"task {self.task.name!r}: the {what} {text!r} has no tokens\n"
                "  fix: give every class a non-empty name"
            )
        return ids

    def _layout(self, slots: int) -> _Layout:
        """Built once per context length M (all classes, padded to the longest)."""
        if slots in self._layouts:
            return self._layouts[slots]
        rows, positions, ends = [], [], []
        for name in self._class_ids:
            half = slots // 2 if self.options.class_position == "middle" else slots
            before = 0 if self.options.class_position == "front" else half
            after = slots - before
            row = [self._sos, *[self._pad] * before, *name, *[self._pad] * after, *self._dot]
            row.append(self._eos)
            first_after = 1 + before + len(name)
            positions.append([*range(1, 1 + before), *range(first_after, first_after + after)])
            ends.append(len(row) - 1)
            rows.append(row)
        width = max(len(row) for row in rows)
        if width > self._max_positions:
            raise BackboneError(
                f"{slots} context slots + the longest class name need {width} positions but "
                f"the text tower of {self.name!r} has {self._max_positions}\n"
                "  fix: lower prompt.length (class_specific context: per class)"
            )
        # Layouts outlive the call that builds them: evaluation (inference mode) may come first.
        with torch.inference_mode(False):
            ids = torch.full((len(rows), width), self._pad, dtype=torch.long)
            for c, row in enumerate(rows):
                ids[c, : len(row)] = torch.tensor(row)
            layout = _Layout(
                ids.to(self.device),
                torch.tensor(positions, dtype=torch.long).view(len(rows), slots).to(self.device),
                torch.tensor(ends, dtype=torch.long, device=self.device),
            )
        self._layouts[slots] = layout
        return layout

    # -- text tower -----------------------------------------------------------------------------

    def _encode_text(self, embeds: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
        """Normalised projected features (N, D) of token embeddings (N, L, d) read at ``eos``.

        The same computation as ``CLIPTextModel`` from the token embeddings on (checked at
        construction): position embeddings, causal encoder, final layer norm, projection.
        """
        text_model = self.clip.text_model
        hidden = text_model.embeddings(inputs_embeds=embeds)
        length = hidden.shape[1]
        blocked = torch.ones(length, length, dtype=torch.bool, device=hidden.device).triu(1)
        mask = torch.zeros(length, length, dtype=hidden.dtype, device=hidden.device)
        mask = mask.masked_fill(blocked, torch.finfo(hidden.dtype).min)[None, None]
        hidden = text_model.encoder(inputs_embeds=hidden, attention_mask=mask).last_hidden_state
        hidden = text_model.final_layer_norm(hidden)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), eos]
        return F.normalize(self.clip.text_projection(pooled), dim=-1)

    def _contexts(self, prompts: torch.Tensor) -> torch.Tensor:
        """Context rows (K, C, M, d) for K prompts (K, P, d)."""
        k, length, dim = prompts.shape
        classes = self.task.num_classes
        if length == 0:
            return self._hard_context.to(prompts)[None, None].expand(k, classes, -1, -1)
        if self.options.context == "shared":
            return prompts[:, None].expand(k, classes, length, dim)
        if length % classes:
            raise BackboneError(
                f"a class-specific context for {classes} classes needs a prompt length that is "
                f"a multiple of {classes}, got {length}\n"
                f"  fix: set prompt.length to {classes} x the context length per class"
            )
        return prompts.view(k, classes, length // classes, dim)

    def text_features(self, prompts: torch.Tensor) -> torch.Tensor:
        """Normalised class text features (K, C, D) under each of K prompts (K, P, d)."""
        memo_key = None
        if not torch.is_grad_enabled():
            data = prompts.detach().float().cpu().contiguous().numpy().tobytes()
            memo_key = f"{tuple(prompts.shape)}:{hashlib.blake2b(data).hexdigest()}"
            if self._text_memo is not None and self._text_memo[0] == memo_key:
                return self._text_memo[1]
        contexts = self._contexts(prompts.to(self.device, self._embed.weight.dtype))
        k, classes, slots, dim = contexts.shape
        layout = self._layout(slots)
        embeds = self._embed(layout.ids).unsqueeze(0).expand(k, -1, -1, -1)
        if slots:
            index = layout.slots[None, :, :, None].expand(k, -1, -1, dim)
            embeds = embeds.scatter(2, index, contexts)
        flat = embeds.reshape(k * classes, -1, dim)
        features = self._encode_text(flat, layout.eos.repeat(k)).view(k, classes, -1)
        if memo_key is not None:
            self._text_memo = (memo_key, features)
        return features

    def _check_text_tower_matches_model(self) -> None:
        """Compare ``_encode_text`` with the model's own text features on the zero-shot text of
        class 0: a transformers version that changes the text tower must fail loudly here."""
        ids = [self._sos, *self._plain_ids(self.task.template.format()), *self._class_ids[0]]
        ids = torch.tensor([[*ids, *self._dot, self._eos]], device=self.device)
        with torch.no_grad():
            own = self.clip.text_model(input_ids=ids).pooler_output
            own = F.normalize(self.clip.text_projection(own), dim=-1)
            eos = torch.tensor([ids.shape[1] - 1], device=self.device)
            ours = self._encode_text(self._embed(ids), eos)
        # Half precision rounds differently in the model's fused attention and in ours.
        atol = 1e-4 if self.clip.dtype == torch.float32 else 3e-2
        if not torch.allclose(own.float(), ours.float(), rtol=1e-3, atol=atol):
            raise BackboneError(
                f"{self.name!r}: CoOp text features differ from CLIPTextModel's own (max diff "
                f"{(own - ours).abs().max().item():.3g}); this transformers version computes "
                "CLIP's text tower differently\n  fix: use a supported transformers version"
            )

    # -- image tower ----------------------------------------------------------------------------

    def _make_store(self) -> FeatureStore:
        namespace = module_fingerprint(
            self.clip.vision_model,
            self.clip.visual_projection,
            extra=f"{preprocessing_key(self.processor)}|{self.clip.dtype}",
        )
        directory = None
        if self.options.disk_cache:
            directory = self.options.cache_dir or default_feature_dir()
        return FeatureStore(namespace, self.clip.config.projection_dim, directory)

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        self.image_tower_calls += 1
        self.images_encoded += pixels.shape[0]
        pixels = pixels.to(self.device, self.clip.dtype)
        pooled = self.clip.vision_model(pixel_values=pixels).pooler_output
        return self.clip.visual_projection(pooled)

    def image_features(self, paths: Sequence[str]) -> torch.Tensor:
        """Normalised image features (N, D) of the images at ``paths`` (deterministic
        preprocessing), from the cache where they are, else encoded in batches and cached."""
        with torch.inference_mode(False), torch.no_grad():
            store = self.feature_store
            keys = [store.key(path) for path in paths]
            found = store.lookup(keys)
            todo = {key: path for key, path in zip(keys, paths, strict=True) if key not in found}
            pending = list(todo.items())
            size = self.options.image_batch_size
            for start in range(0, len(pending), size):
                chunk = pending[start : start + size]
                pixels = pixel_values(self.processor, [path for _, path in chunk])
                encoded = self._encode_pixels(pixels).float().cpu()
                store.add({key: row for (key, _), row in zip(chunk, encoded, strict=True)})
            return F.normalize(store.stack(keys), dim=-1)

    def _augmented_features(self, paths: Sequence[str]) -> torch.Tensor:
        """CoOp's training input: every image augmented and encoded again (no cache)."""
        image_size = self.clip.config.vision_config.image_size
        pixels = augmented_pixel_values(self.processor, paths, image_size)
        with torch.no_grad():
            return F.normalize(self._encode_pixels(pixels), dim=-1)

    # -- the protocol ---------------------------------------------------------------------------

    def collate(self, examples: Sequence[Example]) -> Batch:
        """Image features (cached) and labels; the paths travel in ``meta`` for augmentation."""
        paths = [example.fields[IMAGE_FIELD] for example in examples]
        labels = torch.tensor([example.label for example in examples], dtype=torch.long)
        features = self.image_features(paths)
        return Batch({"image_features": features}, labels, {"image_paths": paths})

    def class_scores(self, prompt: torch.Tensor, batch: Batch) -> torch.Tensor:
        """(B, C) scaled cosine similarities; ``prompt`` is (P, d) or one per row (B, P, d)."""
        if self._training and self.options.features == "augment":
            images = self._augmented_features(batch.meta["image_paths"])  # type: ignore[arg-type]
        else:
            images = batch.inputs["image_features"].to(self.device)
        n = images.shape[0]
        scale = self._scale.to(images.dtype)
        if prompt.dim() == 2:
            text = self.text_features(prompt.unsqueeze(0))[0].to(images.dtype)
            return scale * images @ text.T
        if prompt.dim() != 3 or prompt.shape[0] != n:
            raise BackboneError(
                f"prompt of shape {tuple(prompt.shape)} does not fit a batch of {n} images\n"
                "  fix: pass one prompt (P, d) or one per example (B, P, d)"
            )
        # Candidate scoring repeats each prompt over many rows: encode each distinct one once.
        _, inverse = torch.unique(prompt.detach().flatten(1), dim=0, return_inverse=True)
        rows = torch.arange(n, device=inverse.device)
        first = torch.full((int(inverse.max()) + 1,), n, device=inverse.device)
        first = first.scatter_reduce(0, inverse, rows, reduce="amin")
        text = self.text_features(prompt[first])[inverse].to(images.dtype)
        return scale * torch.einsum("bd,bcd->bc", images, text)

    # -- mode -----------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> None:
        """Training mode matters only for ``features="augment"``; CLIP stays in eval mode."""
        self._training = mode
