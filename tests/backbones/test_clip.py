"""CLIPBackbone (CoOp context on CLIP) with the tiny random CLIP on real EuroSAT images."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from llm_catalyst.backbones import BackboneConfig, build_backbone
from llm_catalyst.backbones.clip import CLIPBackbone, CLIPOptions, context_text
from llm_catalyst.data.config import DataConfig, load_splits
from llm_catalyst.data.sampling import FewShotSplits
from llm_catalyst.data.tasks import IMAGE_FIELD, Example
from llm_catalyst.errors import BackboneError, ConfigError, DataError
from llm_catalyst.prompts.artifact import load_prompt, save_prompt
from llm_catalyst.prompts.projection import FitPolicy, Vocabulary, embed_text, project
from llm_catalyst.training.scoring import evaluate_hard_prompt, evaluate_many
from llm_catalyst.weights.clip import load_pretrained_clip

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def eurosat() -> FewShotSplits:
    """2-shot EuroSAT (seed 1): 20 train and 20 dev images; the 8100 CoOp test images."""
    return load_splits(DataConfig(task="eurosat", data_dir=SHARED_DATA, shots=2, seed=1))


def _backbone(task, cache: Path | None, **options) -> CLIPBackbone:
    clip = {"cache_dir": cache, "disk_cache": cache is not None, **options}
    backbone = build_backbone(BackboneConfig(model="tiny-clip", clip=clip), task)
    assert isinstance(backbone, CLIPBackbone)
    return backbone


@pytest.fixture(scope="module")
def backbone(eurosat, tmp_path_factory) -> CLIPBackbone:
    return _backbone(eurosat.task, tmp_path_factory.mktemp("features"))


def _own_text_features(backbone: CLIPBackbone, texts: list[str]) -> torch.Tensor:
    """CLIP's own text features of plain sentences (the reference for the CoOp layout)."""
    ids = backbone.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        pooled = backbone.clip.text_model(**ids).pooler_output
        return F.normalize(backbone.clip.text_projection(pooled), dim=-1)


def _rows(backbone: CLIPBackbone, text: str) -> torch.Tensor:
    ids = backbone.tokenizer(text, add_special_tokens=False)["input_ids"]
    return backbone.embedding_table[torch.tensor(ids)].clone()


def test_image_features_are_computed_once_and_reused_by_a_second_run(eurosat, tmp_path):
    first = _backbone(eurosat.task, tmp_path, image_batch_size=8)
    batch = first.collate(eurosat.train)
    assert (first.image_tower_calls, first.images_encoded) == (3, 20)  # 8 + 8 + 4 images
    again = first.collate(eurosat.train)
    assert first.image_tower_calls == 3
    assert first.feature_store.stats.memory_hits == 20
    assert torch.equal(batch.inputs["image_features"], again.inputs["image_features"])

    second = _backbone(eurosat.task, tmp_path)  # a new process would see the same disk cache
    from_disk = second.collate(eurosat.train)
    assert second.image_tower_calls == 0
    assert second.feature_store.stats.disk_hits == 20
    assert torch.equal(from_disk.inputs["image_features"], batch.inputs["image_features"])


def test_cached_features_are_the_image_towers_own(backbone, eurosat):
    paths = [ex.fields[IMAGE_FIELD] for ex in eurosat.dev[:4]]
    loaded = load_pretrained_clip("tiny-clip")
    from PIL import Image

    pixels = loaded.processor(
        images=[Image.open(p).convert("RGB") for p in paths], return_tensors="pt"
    )["pixel_values"]
    with torch.no_grad():
        pooled = loaded.model.vision_model(pixel_values=pixels).pooler_output
        expected = F.normalize(loaded.model.visual_projection(pooled), dim=-1)
    assert torch.allclose(backbone.image_features(paths), expected, atol=1e-5)


def test_cache_keys_follow_content_weights_and_preprocessing(eurosat, tmp_path):
    source = Path(eurosat.train[0].fields[IMAGE_FIELD])
    renamed = tmp_path / "elsewhere.jpg"
    shutil.copyfile(source, renamed)
    store = tmp_path / "store"
    first = _backbone(eurosat.task, store)
    first.image_features([str(source)])
    second = _backbone(eurosat.task, store)
    second.image_features([str(renamed)])
    assert second.image_tower_calls == 0, "the same bytes under another name are a cache hit"

    loaded = load_pretrained_clip("tiny-clip")
    with torch.no_grad():
        loaded.model.vision_model.encoder.layers[-1].mlp.fc2.bias.add_(0.1)
    changed = CLIPBackbone(
        loaded.model,
        loaded.tokenizer,
        loaded.processor,
        eurosat.task,
        options=CLIPOptions(cache_dir=store),
    )
    assert changed.feature_store.namespace != first.feature_store.namespace
    changed.image_features([str(source)])
    assert changed.image_tower_calls == 1, "other weights (even one deep layer) must miss"

    loaded = load_pretrained_clip("tiny-clip")
    loaded.processor.image_mean = [0.5, 0.5, 0.5]
    other_preprocessing = CLIPBackbone(
        loaded.model,
        loaded.tokenizer,
        loaded.processor,
        eurosat.task,
        options=CLIPOptions(cache_dir=store),
    )
    assert other_preprocessing.feature_store.namespace != first.feature_store.namespace


def test_projection_gives_clip_tokens_that_read_as_words(backbone):
    vocab = Vocabulary.of(backbone)
    fitted = embed_text("a centered satellite photo of a {class}.", vocab, 6, FitPolicy())
    projection = project(fitted.embeddings, vocab)
    assert projection.tokens == (
        "a</w>",
        "centered</w>",
        "satellite</w>",
        "photo</w>",
        "of</w>",
        "a</w>",
    )
    assert projection.text == "a centered satellite photo of a"
    assert projection.roundtrip_ok

    # A copied tokenizer loses transformers' decode wrapper and decodes "a</w>centered</w>...":
    # the projection must still read as words.
    copied = copy.deepcopy(backbone.tokenizer)
    assert "</w>" in copied.decode(list(projection.token_ids))
    plain = Vocabulary(copied, vocab.table, vocab.excluded_ids)
    assert project(fitted.embeddings, plain).text == "a centered satellite photo of a"


@pytest.mark.parametrize(
    ("position", "sentence"),
    [
        ("end", "a centered satellite photo of {name}."),
        ("middle", "a centered {name} satellite photo of."),
        ("front", "{name} a centered satellite photo of."),
    ],
)
def test_class_positions_match_clips_own_text_features(eurosat, position, sentence):
    """Context rows of real words in each layout give CLIP's features of the same sentence."""
    backbone = _backbone(eurosat.task, None, class_position=position)
    context = _rows(backbone, "a centered satellite photo of")
    features = backbone.text_features(context.unsqueeze(0))
    names = eurosat.task.label_words
    assert features.shape == (1, len(names), backbone.clip.config.projection_dim)
    expected = _own_text_features(backbone, [sentence.format(name=n) for n in names])
    assert torch.allclose(features[0], expected, atol=1e-5)


def test_class_positions_give_different_scores(eurosat, backbone):
    batch = backbone.collate(eurosat.dev[:6])
    prompt = _rows(backbone, "a centered satellite photo of")
    scores = {
        position: _backbone(eurosat.task, None, class_position=position).class_scores(prompt, batch)
        for position in ("end", "middle", "front")
    }
    for position, value in scores.items():
        assert value.shape == (6, 10), position
    assert not torch.allclose(scores["end"], scores["middle"])
    assert not torch.allclose(scores["end"], scores["front"])
    assert not torch.allclose(scores["middle"], scores["front"])


def test_zero_shot_is_the_tasks_template(backbone, eurosat):
    features = backbone.text_features(backbone.embedding_table.new_zeros(1, 0, 32))
    expected = _own_text_features(
        backbone, [f"a centered satellite photo of a {n}." for n in eurosat.task.label_words]
    )
    assert torch.allclose(features[0], expected, atol=1e-5)
    result = evaluate_hard_prompt(backbone, eurosat.dev)
    assert result.n == 20 and 0.0 <= result.accuracy <= 1.0


def test_class_specific_context(eurosat):
    shared = _backbone(eurosat.task, None)
    specific = _backbone(eurosat.task, None, context="class_specific")
    rows = torch.randn(10, 3, 32, generator=torch.Generator().manual_seed(0)) * 0.1
    features = specific.text_features(rows.reshape(1, 30, 32))
    assert features.shape == (1, 10, 16)
    for c in (0, 4, 9):  # class c reads its own rows c*M:(c+1)*M
        alone = shared.text_features(rows[c].unsqueeze(0))[0, c]
        assert torch.allclose(features[0, c], alone, atol=1e-5)
    same = specific.text_features(rows[0].repeat(10, 1).unsqueeze(0))
    assert torch.allclose(same, shared.text_features(rows[0].unsqueeze(0)), atol=1e-5)
    assert not torch.allclose(features, same)
    with pytest.raises(BackboneError, match="multiple of 10"):
        specific.text_features(torch.randn(1, 25, 32))


def test_stacked_candidates_score_like_one_at_a_time(backbone, eurosat):
    generator = torch.Generator().manual_seed(1)
    prompts = backbone.embedding_table[torch.randint(0, 700, (3, 4), generator=generator)]
    together = evaluate_many(backbone, prompts, eurosat.dev, batch_size=16)
    batch = backbone.collate(eurosat.dev)
    for prompt, result in zip(prompts, together, strict=True):
        with torch.no_grad():
            scores = backbone.class_scores(prompt, batch)
        loss = F.cross_entropy(scores, batch.labels).item()
        assert result.loss == pytest.approx(loss, rel=1e-5)


def test_augment_mode_encodes_every_training_step(eurosat, tmp_path):
    backbone = _backbone(eurosat.task, tmp_path, features="augment")
    batch = backbone.collate(eurosat.train[:4])
    cached_calls = backbone.image_tower_calls
    prompt = _rows(backbone, "a photo of a")
    backbone.train(True)
    torch.manual_seed(3)
    first = backbone.class_scores(prompt, batch)
    torch.manual_seed(3)
    same = backbone.class_scores(prompt, batch)
    torch.manual_seed(4)
    other = backbone.class_scores(prompt, batch)
    assert backbone.image_tower_calls == cached_calls + 3
    assert torch.equal(first, same) and not torch.allclose(first, other)
    backbone.train(False)
    evaluated = backbone.class_scores(prompt, batch)
    assert backbone.image_tower_calls == cached_calls + 3, "evaluation uses cached features"
    cached = _backbone(eurosat.task, tmp_path)
    assert torch.allclose(evaluated, cached.class_scores(prompt, cached.collate(eurosat.train[:4])))


def test_artifact_round_trip_without_a_peft_config(backbone, tmp_path):
    prompt = _rows(backbone, "a satellite photo of a")
    directory = save_prompt(tmp_path / "artifact", prompt, backbone)
    assert not (directory / "adapter_config.json").exists()
    loaded = load_prompt(directory, backbone)
    assert torch.equal(loaded.prompt.embeddings, prompt)
    assert loaded.projected_text == "a satellite photo of a"


def test_context_text_keeps_the_words_around_the_class():
    assert context_text("a satellite photo of a {class}.") == "a satellite photo of a"
    assert context_text("A photo of a {}, seen from above.") == "A photo of a , seen from above"
    assert context_text("{classname} from space") == "from space"
    assert context_text("a photo of a") == "a photo of a"
    assert context_text("a photo.") == "a photo."  # projected texts are kept as they are


def test_wrong_pairings_are_refused(eurosat, sentiment_task):
    with pytest.raises(BackboneError, match="classifies images"):
        _backbone(sentiment_task, None)
    with pytest.raises(ConfigError, match="image task"):
        build_backbone(BackboneConfig(model="tiny-causal-lm"), eurosat.task)


def test_a_missing_image_at_feature_time_names_the_file(backbone, tmp_path):
    missing = Example({IMAGE_FIELD: str(tmp_path / "gone.jpg")}, 0)
    with pytest.raises(DataError, match=r"gone\.jpg"):
        backbone.collate([missing])
