"""Built-in task definitions and where their data comes from.

Public API:
    TASK_NAMES: the built-in text task names, in display order.
    IMAGE_TASK_NAMES: the built-in image task names (CLIP backbones).
    get_task(name) -> Task
    list_tasks(data_dir=None) -> list[TaskInfo]
    get_builtin(name) -> BuiltinTask   (the task plus its local files and hub id; used by readers)
    get_image_builtin(name) -> BuiltinImageTask   (an image task's files; read by data.images)
    TaskInfo, BuiltinTask, BuiltinImageTask, LocalFiles, HubSource

Each definition is plain data: the ``Task`` (fields, labels, label words, causal-LM template,
encoder text fields, a description written for the LLM instructor), which record column feeds
each field, how labels are spelled in the local files, and the hub dataset that carries the same
task. Label ids follow the hub's ``ClassLabel`` order so local and hub data agree.

Label words start with a space and were chosen to be single tokens in common BPE vocabularies
(GPT-2, Llama, SmolLM2); a slow test checks this against SmolLM2's tokenizer.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from llm_catalyst.data.paths import resolve_data_dir
from llm_catalyst.data.tasks import Task
from llm_catalyst.errors import ConfigError

LocalFormat = Literal["label_sentence", "agnews_csv", "superglue_jsonl"]
Derive = Callable[[Mapping[str, str]], dict[str, str]]

# Seed of the fixed pool/test split of tasks without an official split. It is a property of the
# data, not of a run: changing it would change every reported test number on MR, CR and AG News.
HOLDOUT_SEED = 20240529


@dataclass(frozen=True)
class LocalFiles:
    """Where a task's files sit under the data folder and how to read them.

    ``test`` is ``None`` when the corpus has no official evaluation split: ``holdout`` examples
    of the ``train`` file then form a fixed, stratified test split (seeded by ``HOLDOUT_SEED``).
    """

    format: LocalFormat
    train: str
    test: str | None = None
    holdout: int = 0
    encoding: str = "utf-8"
    note: str = ""

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.train,) if self.test is None else (self.train, self.test)


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
class BuiltinTask:
    """A task and the recipe to build its examples from local records or hub rows.

    ``columns`` maps each task field to the record column that feeds it (local readers and the
    hub produce records with the same column names). ``raw_labels`` spells each label id as it
    appears in the local files (JSON booleans as ``true``/``false``). ``derive`` adds fields
    computed from the mapped ones, for templates that need them.
    """

    task: Task
    columns: Mapping[str, str]
    raw_labels: tuple[str, ...]
    local: LocalFiles
    hub: HubSource
    derive: Derive | None = None


@dataclass(frozen=True)
class TaskInfo:
    """One line of ``list_tasks``: what the task is and where its data would come from."""

    name: str
    kind: str
    num_classes: int
    description: str
    data: str


def _describe(summary: str, names: tuple[str, ...], meanings: tuple[str, ...]) -> str:
    labels = "; ".join(f"{n}: {m}" for n, m in zip(names, meanings, strict=True))
    return f"{summary} Labels: {labels}."


def _classification(
    name: str,
    summary: str,
    columns: Mapping[str, str],
    labels: tuple[tuple[str, str, str, str], ...],
    template: str,
    text_fields: tuple[str, ...],
    local: LocalFiles,
    hub: HubSource,
    derive: Derive | None = None,
    derived_fields: tuple[str, ...] = (),
) -> BuiltinTask:
    """Labels are (name, raw value in the local files, label word, meaning) per label id."""
    names, raw, words, meanings = (tuple(column) for column in zip(*labels, strict=True))
    task = Task(
        name=name,
        description=_describe(summary, names, meanings),
        field_names=(*columns, *derived_fields),
        label_names=names,
        label_words=words,
        template=template,
        text_fields=text_fields,
        label_meanings=meanings,
    )
    return BuiltinTask(task, MappingProxyType(dict(columns)), raw, local, hub, derive)


def _copa_connector(fields: Mapping[str, str]) -> dict[str, str]:
    """Turn COPA's ``question`` (cause/effect) into words the template can read."""
    connectors = {"cause": "What was the cause?", "effect": "What happened as a result?"}
    question = fields["question"]
    if question not in connectors:
        raise ValueError(f"COPA question must be 'cause' or 'effect', got {question!r}")
    return {"connector": connectors[question]}


def _wsc_question(fields: Mapping[str, str]) -> dict[str, str]:
    """One field asking the coreference question, so encoders get it as their second text."""
    pronoun, candidate = fields["span2_text"], fields["span1_text"]
    return {"question": f'In the passage above, does "{pronoun}" refer to "{candidate}"?'}


_SENTENCE = {"sentence": "text"}
_OFFICIAL_DEV_UNUSED = "the official dev file is not read: dev sets are sampled from the train pool"
_SENTIMENT_TEMPLATE = "{sentence} It was"
_NEG_POS = (
    ("negative", "0", " terrible", "the text expresses a negative opinion"),
    ("positive", "1", " great", "the text expresses a positive opinion"),
)
_YES_NO_TEMPLATE = "{premise}\nQuestion: {hypothesis} Yes or No?\nAnswer:"
_FALSE_TRUE_WORDS = (" No", " Yes")


def _false_true(meaning_false: str, meaning_true: str) -> tuple[tuple[str, str, str, str], ...]:
    return (
        ("false", "false", _FALSE_TRUE_WORDS[0], meaning_false),
        ("true", "true", _FALSE_TRUE_WORDS[1], meaning_true),
    )


def _superglue(task: str, train: str | None = None, note: str = "") -> tuple[LocalFiles, HubSource]:
    folder = {"wsc.fixed": "WSC", "boolq": "BoolQ", "wic": "WiC"}.get(task, task.upper())
    local = LocalFiles(
        format="superglue_jsonl",
        train=train or f"superglue/{folder}/train.jsonl",
        test=f"superglue/{folder}/val.jsonl",
        note=note,
    )
    return local, HubSource("aps/super_glue", task, "train", "validation")


def _copa() -> BuiltinTask:
    """COPA is multiple choice: the template renders the context, each option continues it."""
    names = ("choice1", "choice2")
    meanings = (
        "the first alternative is the more plausible",
        "the second alternative is the more plausible",
    )
    columns = ("premise", "choice1", "choice2", "question")
    task = Task(
        name="copa",
        description=_describe(
            "Choice of plausible alternatives (SuperGLUE COPA). The input is a premise sentence "
            "and a question asking for its cause or its effect; two alternatives follow and the "
            "more plausible one must be chosen.",
            names,
            meanings,
        ),
        field_names=(*columns, "connector"),
        label_names=names,
        label_words=(),
        template="{premise} {connector}",
        text_fields=("premise", "connector"),
        kind="multiple_choice",
        option_fields=names,
        label_meanings=meanings,
    )
    local, hub = _superglue("copa")
    columns_map = MappingProxyType({c: c for c in columns})
    return BuiltinTask(task, columns_map, ("0", "1"), local, hub, derive=_copa_connector)


_DEFINITIONS: tuple[BuiltinTask, ...] = (
    _classification(
        "sst2",
        "Movie review sentiment (SST-2). The input is one sentence from a movie review, "
        "tokenized and lower-cased.",
        _SENTENCE,
        _NEG_POS,
        _SENTIMENT_TEMPLATE,
        ("sentence",),
        LocalFiles(
            "label_sentence",
            "sst2/stsa.binary.train",
            "sst2/stsa.binary.test",
            note=_OFFICIAL_DEV_UNUSED,
        ),
        HubSource("SetFit/sst2"),
    ),
    _classification(
        "sst5",
        "Fine-grained movie review sentiment (SST-5). The input is one sentence from a movie "
        "review, tokenized and lower-cased.",
        _SENTENCE,
        (
            ("very negative", "0", " terrible", "the reviewer strongly dislikes the movie"),
            ("negative", "1", " bad", "the reviewer mildly dislikes the movie"),
            ("neutral", "2", " okay", "the sentence is neutral or mixed"),
            ("positive", "3", " good", "the reviewer mildly likes the movie"),
            ("very positive", "4", " great", "the reviewer strongly likes the movie"),
        ),
        _SENTIMENT_TEMPLATE,
        ("sentence",),
        LocalFiles(
            "label_sentence",
            "sst5/stsa.fine.train",
            "sst5/stsa.fine.test",
            note=_OFFICIAL_DEV_UNUSED,
        ),
        HubSource("SetFit/sst5"),
    ),
    _classification(
        "mr",
        "Movie review polarity (MR, Rotten Tomatoes snippets). The input is one sentence from a "
        "movie review, tokenized and lower-cased.",
        _SENTENCE,
        _NEG_POS,
        _SENTIMENT_TEMPLATE,
        ("sentence",),
        LocalFiles(
            "label_sentence",
            "mr/rt-polarity.all",
            holdout=2000,
            encoding="latin-1",
            note="no official split",
        ),
        HubSource("cornell-movie-review-data/rotten_tomatoes"),
    ),
    _classification(
        "cr",
        "Customer review polarity (CR). The input is one sentence from an online review of an "
        "electronics product, tokenized and lower-cased.",
        _SENTENCE,
        _NEG_POS,
        _SENTIMENT_TEMPLATE,
        ("sentence",),
        LocalFiles("label_sentence", "cr/custrev.all", holdout=2000, note="no official split"),
        HubSource("SetFit/CR"),
    ),
    _classification(
        "agnews",
        "News topic classification (AG News). The input is the title and first sentences of a "
        "news article.",
        {"text": "text"},
        (
            ("World", "World", " World", "international news and politics"),
            ("Sports", "Sports", " Sports", "sports news"),
            ("Business", "Business", " Business", "business, markets and the economy"),
            ("Sci/Tech", "Science/Tech", " Technology", "science and technology news"),
        ),
        "{text}\nTopic:",
        ("text",),
        LocalFiles(
            "agnews_csv",
            "agnews/test.csv",
            holdout=3800,
            note="only the official test file is available; pool and test are both drawn from it",
        ),
        HubSource("fancyzhx/ag_news"),
    ),
    _classification(
        "rte",
        "Textual entailment (SuperGLUE RTE). The input is a premise passage and a hypothesis "
        "sentence; decide whether the premise implies the hypothesis.",
        {"premise": "premise", "hypothesis": "hypothesis"},
        (
            ("entailment", "entailment", " Yes", "the premise implies the hypothesis is true"),
            (
                "not_entailment",
                "not_entailment",
                " No",
                "the premise does not imply the hypothesis",
            ),
        ),
        _YES_NO_TEMPLATE,
        ("premise", "hypothesis"),
        *_superglue("rte"),
    ),
    _classification(
        "cb",
        "Three-way entailment (SuperGLUE CommitmentBank). The input is a short dialogue or "
        "passage ending in an embedded clause, and a hypothesis taken from that clause; decide "
        "how committed the speaker is to the hypothesis.",
        {"premise": "premise", "hypothesis": "hypothesis"},
        (
            ("entailment", "entailment", " Yes", "the premise implies the hypothesis is true"),
            ("contradiction", "contradiction", " No", "the premise implies it is false"),
            ("neutral", "neutral", " Maybe", "the premise leaves it open"),
        ),
        "{premise}\nQuestion: {hypothesis} Yes, No, or Maybe?\nAnswer:",
        ("premise", "hypothesis"),
        *_superglue("cb"),
    ),
    _copa(),
    _classification(
        "wic",
        "Word in context (SuperGLUE WiC). The input is a target word and two sentences that "
        "both contain it; decide whether the word has the same meaning in both.",
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
    _classification(
        "wsc",
        "Pronoun resolution (SuperGLUE Winograd Schema). The input is a short passage, a "
        "pronoun in it and a candidate noun phrase; decide whether the pronoun refers to the "
        "candidate.",
        {"text": "text", "span1_text": "span1_text", "span2_text": "span2_text"},
        _false_true("the pronoun refers to something else", "the pronoun refers to the candidate"),
        "{text}\nQuestion: {question} Yes or No?\nAnswer:",
        ("text", "question"),
        *_superglue("wsc.fixed"),
        derive=_wsc_question,
        derived_fields=("question",),
    ),
    _classification(
        "boolq",
        "Yes/no questions about a passage (SuperGLUE BoolQ). The input is a Wikipedia "
        "paragraph and a question about it.",
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


# The one field of an image example: the absolute path of its image (see data.images).
IMAGE_FIELD = "image"


@dataclass(frozen=True)
class BuiltinImageTask:
    """An image task in CoOp's layout under the data folder (read by ``data.images``).

    The class names here are checked against the split file when it is read. ``hard_context``
    is the zero-shot text before the class name (CoOp's hand-written template for the dataset).
    """

    task: Task
    split_file: str
    image_dir: str
    fewshot_dir: str
    hard_context: str
    note: str = ""


def _eurosat() -> BuiltinImageTask:
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
    task = Task(
        name="eurosat",
        description=_describe(summary, names, meanings),
        field_names=(IMAGE_FIELD,),
        label_names=names,
        label_words=names,
        template="a centered satellite photo of a",
        text_fields=(IMAGE_FIELD,),
        label_meanings=meanings,
    )
    return BuiltinImageTask(
        task,
        split_file="eurosat/split_zhou_EuroSAT.json",
        image_dir="eurosat/2750",
        fewshot_dir="eurosat/fewshot_indices",
        hard_context="a centered satellite photo of a",
        note="train and dev from the few-shot index file of (shots, seed); test: CoOp's split",
    )


_IMAGE_DEFINITIONS: tuple[BuiltinImageTask, ...] = (_eurosat(),)
_BY_NAME: Mapping[str, BuiltinTask] = MappingProxyType({d.task.name: d for d in _DEFINITIONS})
_IMAGE_BY_NAME: Mapping[str, BuiltinImageTask] = MappingProxyType(
    {d.task.name: d for d in _IMAGE_DEFINITIONS}
)
TASK_NAMES: tuple[str, ...] = tuple(_BY_NAME)
IMAGE_TASK_NAMES: tuple[str, ...] = tuple(_IMAGE_BY_NAME)


def get_builtin(name: str) -> BuiltinTask:
    """The full definition of a built-in task; raises ConfigError naming close matches."""
    if name in _IMAGE_BY_NAME:
        raise ConfigError(
            f"task {name!r} is an image task: its data is read by llm_catalyst.data.images "
            "(load_image_splits), not by the text readers"
        )
    try:
        return _BY_NAME[name]
    except KeyError:
        known = (*TASK_NAMES, *IMAGE_TASK_NAMES)
        close = difflib.get_close_matches(name.lower(), known, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"unknown task {name!r}; {hint}built-in tasks are: {', '.join(known)} "
            "(or describe your own data with a CustomTaskSpec)"
        ) from None


def get_image_builtin(name: str) -> BuiltinImageTask:
    """The definition of a built-in image task; raises ConfigError for any other name."""
    if name not in _IMAGE_BY_NAME:
        raise ConfigError(
            f"{name!r} is not a built-in image task; image tasks are: " + ", ".join(_IMAGE_BY_NAME)
        )
    return _IMAGE_BY_NAME[name]


def get_task(name: str) -> Task:
    """The built-in ``Task`` called ``name`` (text or image)."""
    if name in _IMAGE_BY_NAME:
        return _IMAGE_BY_NAME[name].task
    return get_builtin(name).task


def list_tasks(data_dir: str | os.PathLike[str] | None = None) -> list[TaskInfo]:
    """Every built-in task with the data source ``load_task(source="auto")`` would use."""
    root = resolve_data_dir(data_dir)
    infos = []
    for definition in _DEFINITIONS:
        files = definition.local.paths
        if root is not None and all((root / f).is_file() for f in files):
            data = "local: " + ", ".join(str(root / f) for f in files)
        else:
            data = f"hub: {definition.hub.hub_id}"
        task = definition.task
        infos.append(TaskInfo(task.name, task.kind, task.num_classes, task.description, data))
    for image in _IMAGE_DEFINITIONS:
        found = root is not None and (root / image.split_file).is_file()
        data = f"local: {root / image.split_file}" if found else f"missing: {image.split_file}"
        task = image.task
        infos.append(TaskInfo(task.name, "image", task.num_classes, task.description, data))
    return infos
