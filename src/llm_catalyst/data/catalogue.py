"""The built-in tasks: each one a spec over files under the data folder, plus its hub twin.

Label ids follow the hub's ``ClassLabel`` order so local and hub data agree. Label words start
with a space and were chosen to be single tokens in common BPE vocabularies (GPT-2, Llama,
SmolLM2); a slow test checks this against SmolLM2's tokenizer. Every text task carries a short
hand-written instruction (the descriptions describe the data for the LLM; they do not instruct).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llm_catalyst.data.specs import DerivedField, ImageTaskSpec, TableFormat, TextTaskSpec

# (label name, label word, meaning) per label id.
Labels = tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face dataset carrying the same task (labels as ``ClassLabel`` ids)."""

    path: str
    config: str | None = None
    train_split: str = "train"
    test_split: str = "test"

    @property
    def hub_id(self) -> str:
        return self.path if self.config is None else f"{self.path}:{self.config}"


@dataclass(frozen=True)
class BuiltinTextTask:
    """A built-in text task: its spec (paths relative to the data folder) and hub dataset.

    Hub rows carry the same column names as the records the local readers produce.
    """

    spec: TextTaskSpec
    hub: HubSource


def _describe(summary: str, names: tuple[str, ...], meanings: tuple[str, ...]) -> str:
    labels = "; ".join(f"{n}: {m}" for n, m in zip(names, meanings, strict=True))
    return f"{summary} Labels: {labels}."


@dataclass(frozen=True)
class _Files:
    """The local files of a task; without ``test``, ``holdout`` train examples form the test."""

    format: TableFormat
    train: str
    test: str | None = None
    holdout: int = 0
    encoding: str = "utf-8"
    note: str = ""


def _classification(
    name: str,
    summary: str,
    instruction: str,
    columns: Mapping[str, str],
    labels: Labels,
    template: str,
    text_fields: tuple[str, ...],
    files: _Files,
    hub: HubSource,
    **extra: object,
) -> BuiltinTextTask:
    names, words, meanings = (tuple(column) for column in zip(*labels, strict=True))
    spec = TextTaskSpec.model_validate(
        {
            "name": name,
            "description": _describe(summary, names, meanings),
            "instruction": instruction,
            **vars(files),
            "columns": dict(columns),
            "label_names": names,
            "label_words": words,
            "label_meanings": meanings,
            "template": template,
            "text_fields": text_fields,
            **extra,
        }
    )
    return BuiltinTextTask(spec, hub)


def _sentence(
    name: str, summary: str, instruction: str, labels: Labels, files: _Files, hub: HubSource
) -> BuiltinTextTask:
    """A sentiment task over one review sentence; the label word follows "It was"."""
    return _classification(
        name,
        summary,
        instruction,
        {"sentence": "text"},
        labels,
        "{sentence} It was",
        ("sentence",),
        files,
        hub,
    )


_OFFICIAL_DEV_UNUSED = "the official dev file is not read: dev sets are sampled from the train pool"
_NEG_POS = (
    ("negative", " terrible", "the text expresses a negative opinion"),
    ("positive", " great", "the text expresses a positive opinion"),
)
_YES_NO_TEMPLATE = "{premise}\nQuestion: {hypothesis} Yes or No?\nAnswer:"


def _false_true(meaning_false: str, meaning_true: str) -> Labels:
    return (("false", " No", meaning_false), ("true", " Yes", meaning_true))


def _superglue(task: str, train: str | None = None, note: str = "") -> tuple[_Files, HubSource]:
    folder = {"wsc.fixed": "WSC", "boolq": "BoolQ", "wic": "WiC"}.get(task, task.upper())
    files = _Files(
        format="superglue_jsonl",
        train=train or f"superglue/{folder}/train.jsonl",
        test=f"superglue/{folder}/val.jsonl",
        note=note,
    )
    return files, HubSource("aps/super_glue", task, "train", "validation")


def _entailment(
    name: str, summary: str, instruction: str, other_labels: Labels, template: str
) -> BuiltinTextTask:
    """A SuperGLUE premise/hypothesis task: label 0 is entailment (" Yes"), ``other_labels``
    follow in the hub's order."""
    return _classification(
        name,
        summary,
        instruction,
        {"premise": "premise", "hypothesis": "hypothesis"},
        (("entailment", " Yes", "the premise implies the hypothesis is true"), *other_labels),
        template,
        ("premise", "hypothesis"),
        *_superglue(name),
    )


_TEXT_TASKS: tuple[BuiltinTextTask, ...] = (
    _sentence(
        "sst2",
        "Movie review sentiment (SST-2). The input is one sentence from a movie review, "
        "tokenized and lower-cased.",
        "Decide whether this movie review is positive or negative.",
        _NEG_POS,
        _Files(
            "label_sentence",
            "sst2/stsa.binary.train",
            "sst2/stsa.binary.test",
            note=_OFFICIAL_DEV_UNUSED,
        ),
        HubSource("SetFit/sst2"),
    ),
    _sentence(
        "sst5",
        "Fine-grained movie review sentiment (SST-5). The input is one sentence from a movie "
        "review, tokenized and lower-cased.",
        "Rate the sentiment of this movie review from very negative to very positive.",
        (
            ("very negative", " terrible", "the reviewer strongly dislikes the movie"),
            ("negative", " bad", "the reviewer mildly dislikes the movie"),
            ("neutral", " okay", "the sentence is neutral or mixed"),
            ("positive", " good", "the reviewer mildly likes the movie"),
            ("very positive", " great", "the reviewer strongly likes the movie"),
        ),
        _Files(
            "label_sentence",
            "sst5/stsa.fine.train",
            "sst5/stsa.fine.test",
            note=_OFFICIAL_DEV_UNUSED,
        ),
        HubSource("SetFit/sst5"),
    ),
    _sentence(
        "mr",
        "Movie review polarity (MR, Rotten Tomatoes snippets). The input is one sentence from a "
        "movie review, tokenized and lower-cased.",
        "Decide whether this movie review is positive or negative.",
        _NEG_POS,
        _Files(
            "label_sentence",
            "mr/rt-polarity.all",
            holdout=2000,
            encoding="latin-1",
            note="no official split",
        ),
        HubSource("cornell-movie-review-data/rotten_tomatoes"),
    ),
    _sentence(
        "cr",
        "Customer review polarity (CR). The input is one sentence from an online review of an "
        "electronics product, tokenized and lower-cased.",
        "Decide whether this product review is positive or negative.",
        _NEG_POS,
        _Files("label_sentence", "cr/custrev.all", holdout=2000, note="no official split"),
        HubSource("SetFit/CR"),
    ),
    _classification(
        "agnews",
        "News topic classification (AG News). The input is the title and first sentences of a "
        "news article.",
        "Classify the topic of this news article: world, sports, business or technology.",
        {"text": "text"},
        (
            ("World", " World", "international news and politics"),
            ("Sports", " Sports", "sports news"),
            ("Business", " Business", "business, markets and the economy"),
            ("Sci/Tech", " Technology", "science and technology news"),
        ),
        "{text}\nTopic:",
        ("text",),
        _Files(
            "agnews_csv",
            "agnews/test.csv",
            holdout=3800,
            note="only the official test file is available; pool and test are both drawn from it",
        ),
        HubSource("fancyzhx/ag_news"),
        label_values={"Science/Tech": "Sci/Tech"},
    ),
    _entailment(
        "rte",
        "Textual entailment (SuperGLUE RTE). The input is a premise passage and a hypothesis "
        "sentence; decide whether the premise implies the hypothesis.",
        "Decide whether the premise implies the hypothesis.",
        (("not_entailment", " No", "the premise does not imply the hypothesis"),),
        _YES_NO_TEMPLATE,
    ),
    _entailment(
        "cb",
        "Three-way entailment (SuperGLUE CommitmentBank). The input is a short dialogue or "
        "passage ending in an embedded clause, and a hypothesis taken from that clause; decide "
        "how committed the speaker is to the hypothesis.",
        "Decide whether the premise implies, contradicts or leaves open the hypothesis.",
        (
            ("contradiction", " No", "the premise implies it is false"),
            ("neutral", " Maybe", "the premise leaves it open"),
        ),
        "{premise}\nQuestion: {hypothesis} Yes, No, or Maybe?\nAnswer:",
    ),
    # COPA is multiple choice: the template renders the context, each option continues it.
    _classification(
        "copa",
        "Choice of plausible alternatives (SuperGLUE COPA). The input is a premise sentence "
        "and a question asking for its cause or its effect; two alternatives follow and the "
        "more plausible one must be chosen.",
        "Choose the more plausible cause or effect of the premise.",
        {c: c for c in ("premise", "choice1", "choice2", "question")},
        (
            ("choice1", "", "the first alternative is the more plausible"),
            ("choice2", "", "the second alternative is the more plausible"),
        ),
        "{premise} {connector}",
        ("premise", "connector"),
        *_superglue("copa"),
        label_words=[],
        option_fields=["choice1", "choice2"],
        derived={
            "connector": DerivedField(
                template="{question}",
                values={"cause": "What was the cause?", "effect": "What happened as a result?"},
            )
        },
    ),
    _classification(
        "wic",
        "Word in context (SuperGLUE WiC). The input is a target word and two sentences that "
        "both contain it; decide whether the word has the same meaning in both.",
        "Decide whether the word has the same meaning in both sentences.",
        {"word": "word", "sentence1": "sentence1", "sentence2": "sentence2"},
        _false_true(
            "the word has different meanings in the two sentences",
            "the word has the same meaning in both sentences",
        ),
        "Sentence 1: {sentence1}\nSentence 2: {sentence2}\n"
        'Question: Is the word "{word}" used in the same sense in both sentences?\nAnswer:',
        ("sentence1", "sentence2"),
        *_superglue("wic"),
    ),
    # One field asks the coreference question, so encoders get it as their second text.
    _classification(
        "wsc",
        "Pronoun resolution (SuperGLUE Winograd Schema). The input is a short passage, a "
        "pronoun in it and a candidate noun phrase; decide whether the pronoun refers to the "
        "candidate.",
        "Decide whether the pronoun refers to the candidate noun phrase.",
        {"text": "text", "span1_text": "span1_text", "span2_text": "span2_text"},
        _false_true("the pronoun refers to something else", "the pronoun refers to the candidate"),
        "{text}\nQuestion: {question} Yes or No?\nAnswer:",
        ("text", "question"),
        *_superglue("wsc.fixed"),
        derived={
            "question": DerivedField(
                template='In the passage above, does "{span2_text}" refer to "{span1_text}"?'
            )
        },
    ),
    _classification(
        "boolq",
        "Yes/no questions about a passage (SuperGLUE BoolQ). The input is a Wikipedia "
        "paragraph and a question about it.",
        "Answer the question about the passage with yes or no.",
        {"question": "question", "passage": "passage"},
        _false_true("the answer to the question is no", "the answer to the question is yes"),
        "{passage}\nQuestion: {question}?\nAnswer:",
        ("question", "passage"),
        *_superglue(
            "boolq",
            train="fewglue_32dev/BoolQ/train.jsonl",
            note="the train pool is FewGLUE's 32-example BoolQ train set; the full BoolQ train "
            "set is not available locally",
        ),
    ),
)


def _eurosat() -> ImageTaskSpec:
    """CoOp's EuroSAT layout; train and dev come from the few-shot index file of (shots, seed)."""
    classes = (
        ("Annual Crop Land", "fields of annual crops"),
        ("Forest", "forest"),
        ("Herbaceous Vegetation Land", "herbaceous vegetation, grass and shrubs"),
        ("Highway or Road", "a highway or road crossing the scene"),
        ("Industrial Buildings", "industrial buildings"),
        ("Pasture Land", "pasture land"),
        ("Permanent Crop Land", "permanent crops such as orchards and vineyards"),
        ("Residential Buildings", "residential buildings"),
        ("River", "a river"),
        ("Sea or Lake", "open water of a sea or lake"),
    )
    names = tuple(name for name, _ in classes)
    meanings = tuple(f"the image shows {meaning}" for _, meaning in classes)
    summary = (
        "Land use and land cover classification of Sentinel-2 satellite images (EuroSAT, RGB, "
        "64x64 pixels, 10 classes). A CLIP model compares each image with one text per class; "
        "the prompt is that text, a template around the class name such as "
        "'a centered satellite photo of a {class}.'. Write each prompt as such a template "
        "containing {class}."
    )
    return ImageTaskSpec(
        name="eurosat",
        description=_describe(summary, names, meanings),
        format="coop_split",
        split_file="eurosat/split_zhou_EuroSAT.json",
        image_dir="eurosat/2750",
        fewshot_dir="eurosat/fewshot_indices",
        class_names=list(names),
        template="a centered satellite photo of a",
        label_meanings=list(meanings),
    )


TEXT_TASKS: Mapping[str, BuiltinTextTask] = {t.spec.name: t for t in _TEXT_TASKS}
IMAGE_TASKS: Mapping[str, ImageTaskSpec] = {spec.name: spec for spec in (_eurosat(),)}
