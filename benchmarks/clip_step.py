"""Time one CoOp training step with cached image features against CoOp's per-step image encoding.

The model is a random CLIP shaped like ViT-B/16 (image tower: 12 layers, 768 wide, 16x16
patches of 224x224 images; text tower: 12 layers, 512 wide, 77 positions, 49408-token
vocabulary; 512-d joint space): timings depend on shapes, not on trained weights, and no CLIP
weights can be downloaded here. The tokenizer is tiny-clip's (a CLIP tokenizer over a small
vocabulary); the class names tokenize into a few more pieces than in CLIP's own vocabulary,
which makes the text tower's work slightly larger, not smaller.

Data: the 16-shot EuroSAT training images of seed 1 (real 64x64 JPEGs upsampled by CLIP's
preprocessing), 10 classes, batch 32, a 16-slot shared context with the class name at the end.

cached: ``features="cached"``: the image features come from the cache, so a step is the text
tower's forward and backward for the 10 class prompts plus the optimizer step.
coop: ``features="augment"``, CoOp's own behaviour: every step decodes, augments (random
resized crop, horizontal flip) and encodes the 32 images with the frozen image tower, then runs
the same text-tower step.

The features of all training images are computed once before timing (``feature_pass_s`` is
that one pass, per image); both ways then run ``--repeats`` steps alternating, after one
warm-up step each, and a way's time is its fastest step (other processes on the machine slow
some steps down).

Usage: python benchmarks/clip_step.py [--repeats 3] [--threads N]
The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import CLIPConfig, CLIPModel

from llm_catalyst.backbones.clip import CLIPBackbone, CLIPOptions
from llm_catalyst.data.config import DataConfig, load_splits
from llm_catalyst.data.tasks import IMAGE_FIELD
from llm_catalyst.training.config import TrainConfig
from llm_catalyst.training.trainer import PromptTrainer
from llm_catalyst.weights.clip import image_processor_class, tiny_clip_tokenizer
from machine import this_machine

DATA_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def vit_b16_shaped(tokenizer) -> CLIPModel:
    config = CLIPConfig(
        text_config={
            "vocab_size": 49408,
            "hidden_size": 512,
            "intermediate_size": 2048,
            "num_hidden_layers": 12,
            "num_attention_heads": 8,
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 224,
            "patch_size": 16,
        },
        projection_dim=512,
    )
    torch.manual_seed(0)
    return CLIPModel(config).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per way")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--n-ctx", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(this_machine().describe(), flush=True)

    splits = load_splits(DataConfig(task="eurosat", data_dir=args.data_dir, shots=16, seed=1))
    tokenizer = tiny_clip_tokenizer()
    model = vit_b16_shaped(tokenizer)
    processor = image_processor_class()()  # CLIP's defaults: 224 px, bicubic, centre crop
    train_config = TrainConfig(
        steps=args.repeats + 1, batch_size=args.batch_size, lr=2e-3, progress=False
    )
    with tempfile.TemporaryDirectory() as cache:
        ways = {}
        for name, features in (("cached", "cached"), ("coop", "augment")):
            options = CLIPOptions(features=features, cache_dir=Path(cache))
            ways[name] = CLIPBackbone(
                model, tokenizer, processor, splits.task, name=name, options=options
            )
        start = time.perf_counter()
        ways["cached"].image_features([ex.fields[IMAGE_FIELD] for ex in splits.train])
        feature_pass = (time.perf_counter() - start) / len(splits.train)

        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(0, len(tokenizer) - 2, (args.n_ctx,), generator=generator)
        initial = model.text_model.embeddings.token_embedding.weight[ids].detach()
        trainers = {
            name: PromptTrainer(backbone, initial, splits.train, train_config, seed=1)
            for name, backbone in ways.items()
        }
        for trainer in trainers.values():
            trainer.train_step()  # warm-up (allocations, layouts)
        times: dict[str, list[float]] = {name: [] for name in ways}
        for repeat in range(args.repeats):
            order = list(trainers) if repeat % 2 == 0 else list(reversed(trainers))
            for name in order:
                start = time.perf_counter()
                record = trainers[name].train_step()
                times[name].append(time.perf_counter() - start)
                seconds = times[name][-1]
                print(f"{name}: step {record.step} {seconds:.3f} s (loss {record.loss:.4f})")
        calls = {name: backbone.image_tower_calls for name, backbone in ways.items()}

    cached, coop = min(times["cached"]), min(times["coop"])
    print(f"image tower calls: {calls} (cached: the one feature pass only)")
    result = {
        "speedup_cached_features": round(coop / cached, 2),
        "cached_step_s": round(cached, 4),
        "coop_step_s": round(coop, 4),
        "feature_pass_s_per_image": round(feature_pass, 4),
        "batch_size": args.batch_size,
        "classes": splits.task.num_classes,
        "n_ctx": args.n_ctx,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "model": "random CLIP shaped like ViT-B/16",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
