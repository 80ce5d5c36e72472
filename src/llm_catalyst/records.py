"""One schema per record a run directory holds, shared by the code that writes it and the code
that reads it back, so a field cannot be renamed on one side only.

Every field that older run directories lack has a default: ``report`` still reads them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

# results.json without a ``format_version`` field was written before this module existed;
# version 3 renamed ``budget`` (the compute spent) to ``compute``.
RESULTS_FORMAT_VERSION = 3

# Where a candidate prompt came from: the current prompt S, the pool of projected trajectory
# texts, the LLM, random vocabulary tokens, the pool's best projection (projection-restart), the
# task's hand-written instruction, or the run's initial prompt (llm-only's first entry).
Origin = Literal["current", "pool", "llm", "random", "projection", "instruction", "initial"]

# How records written before ``origin`` named it: one free ``source`` string.
_LEGACY_SOURCES: dict[str, Origin] = {
    "current": "current",
    "llm": "llm",
    "random tokens": "random",
    "initial prompt": "initial",
    "instruction": "instruction",
}


class Record(BaseModel):
    """Immutable; unknown keys are ignored, so a newer writer's extra fields break no reader."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Metrics(Record):
    loss: float
    accuracy: float
    n: int = Field(ge=0)


class WallClock(Record):
    """Seconds spent by a run; phases a run did not record are None."""

    total_s: float = Field(ge=0)
    gradient_s: float | None = Field(default=None, ge=0)
    scoring_s: float | None = Field(default=None, ge=0)
    llm_s: float | None = Field(default=None, ge=0)


class LLMUsage(Record):
    """LLM use of a run. ``calls`` counts every answered request, fresh or replayed from the
    response cache (a resumed run replays); ``cost`` is what the fresh calls cost."""

    calls: int = Field(default=0, ge=0)
    fresh_calls: int = Field(default=0, ge=0)
    cache_hits: int = Field(default=0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cost: float | None = None
    skipped_rounds: int = Field(default=0, ge=0)
    model: str | None = None
    backend: str | None = None
    shares_backbone_model: bool = False


class ComputeSpent(Record):
    """Work besides the LLM: the gradient budget every method shares, and evaluation passes.

    ``dev_prompts_scored`` counts the prompts scored on the whole dev split;
    ``dev_prompts_reused`` those whose score on it was already known (the same rows and head,
    scored earlier in the run) and so not scored again; ``dev_prompts_raced_out`` the
    proposals a race (``loop.racing``) dropped after scoring them on a part of it.

    ``gradient_steps`` counts every optimizer step, probes included; ``probe_steps`` those
    taken inside probes (the winners' included, which extend the kept trajectory) and
    ``discarded_probe_steps`` those of the probed candidates that did not continue;
    ``race_steps`` those a start race took (every entrant's, the winner's included) and
    ``discarded_race_steps`` those of the entrants it cut.

    A run counts into one instance as it goes (so it is mutable, unlike the other records) and
    sets the gradient steps when it ends.
    """

    model_config = ConfigDict(frozen=False, extra="ignore")

    gradient_steps: int = Field(0, ge=0)
    train_examples_seen: int = Field(0, ge=0)
    dev_prompts_scored: int = Field(0, ge=0)
    # Written since scores are reused and proposals raced: absent (0) in older results.json.
    dev_prompts_reused: int = Field(0, ge=0)
    dev_prompts_raced_out: int = Field(0, ge=0)
    dev_forward_passes: int = Field(0, ge=0)
    test_forward_passes: int = Field(0, ge=0)
    probe_steps: int = Field(default=0, ge=0)
    discarded_probe_steps: int = Field(default=0, ge=0)
    # Written since the start race: absent (0) in older results.json.
    race_steps: int = Field(default=0, ge=0)
    discarded_race_steps: int = Field(default=0, ge=0)
    # Written since the meta-prompt's errors ingredient: absent (0) in older results.json.
    train_forward_passes: int = Field(0, ge=0)

    @property
    def discarded_steps(self) -> int:
        """Optimizer steps taken on copies the run did not continue from: they count against
        ``train.steps`` but are not in the kept trajectory."""
        return self.discarded_probe_steps + self.discarded_race_steps


class SchedulePlan(Record):
    """How a run divides its optimizer steps (``catalyst.config.Schedule`` adds the arithmetic):
    ``rounds`` gradient stages of ``stage_steps``, probes of ``probe_steps`` for the
    ``probe_top`` best proposals, and ``final_steps`` to close the run."""

    rounds: int
    stage_steps: int
    final_steps: int
    probe_steps: int = 0
    probe_top: int = 0
    init_round: bool = False


class ScheduleRecord(SchedulePlan):
    """The plan as results.json and the plan event hold it, with the steps it adds up to."""

    total_steps: int


class RunResults(Record):
    """results.json. Fields other than method, task, seed and test may be missing from run
    directories written before version 2 (the old ``tune`` command wrote only a few)."""

    format_version: int = 1
    method: str
    arm: str | None = None
    task: str
    seed: int
    protocol: str | None = None
    test: Metrics
    dev: Metrics | None = None
    best_step: int | None = None
    best_origin: str | None = None
    zero_shot_test: Metrics | None = None
    projected_text: str | None = None
    projection_roundtrip_ok: bool | None = None
    selection_split: str | None = None
    schedule: ScheduleRecord | None = None
    rounds_done: int = 0
    restarts: int = 0
    race: RaceRecord | None = None
    wall_clock: WallClock | None = None
    llm: LLMUsage | None = None
    compute: ComputeSpent | None = None
    run_dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _renamed_compute(cls, data: Any) -> Any:
        """Versions before 3 wrote the compute spent as ``budget``."""
        if isinstance(data, dict) and "budget" in data and "compute" not in data:
            data = {**data, "compute": data["budget"]}
        return data

    @property
    def arm_name(self) -> str:
        """What a comparison calls this run: its experiment arm, else its method."""
        return self.arm or self.method

    @property
    def scored_split(self) -> str:
        """What ``test`` holds: the evaluation split, or under protocol ``validation`` held-out
        train-pool examples, which must never be reported as test accuracy."""
        return "validation" if self.protocol == "validation" else "test"


class Event(Record):
    """A line of events.jsonl; ``kind`` is written as its ``event`` field."""

    kind: ClassVar[str]

    def line(self, time: float) -> dict[str, Any]:
        return {"event": self.kind, "time": time, **self.model_dump(mode="json")}


class SplitsEvent(Event):
    kind: ClassVar[str] = "splits"
    train: int
    dev: int
    test: int
    source: str
    selection_split: str


class PlanEvent(ScheduleRecord, Event):
    """The method and its schedule, logged when a run starts."""

    kind: ClassVar[str] = "plan"
    method: str


class ZeroShotEvent(Event):
    """``reused``: read from the zero-shot cache of the grid, where another cell with the same
    backbone, task, template and test subset wrote it (catalyst/zero_shot.py)."""

    kind: ClassVar[str] = "zero_shot_test"
    loss: float
    accuracy: float
    n: int
    reused: bool = False


class TrainStepEvent(Event):
    kind: ClassVar[str] = "train_step"
    step: int
    loss: float
    lr: float | None = None
    grad_norm: float | None = None


class DevEvalEvent(Event):
    kind: ClassVar[str] = "dev_eval"
    step: int
    loss: float
    accuracy: float
    n: int | None = None
    improved: bool = False


class ProjectedPoint(Record):
    step: int
    loss: float
    text: str
    roundtrip_ok: bool


class TrajectoryEvent(Event):
    kind: ClassVar[str] = "trajectory"
    round: int
    points: tuple[ProjectedPoint, ...]


def origin_text(origin: Origin | None, detail: str) -> str:
    """How messages name a candidate's origin: "llm", "step 8, lowest train loss" (a pool
    text), "projection (step 8)"; also the free ``source`` string older records hold."""
    if origin == "pool":
        return detail
    if origin == "projection":
        return f"projection ({detail})"
    named = {value: key for key, value in _LEGACY_SOURCES.items()}
    return named.get(origin, detail) if origin is not None else detail


def _parse_source(source: str) -> tuple[Origin | None, str]:
    """The origin and detail of an older record's ``source`` string (``origin_text`` reversed):
    "llm", "step 8, lowest train loss", "projection (step 8)", "random tokens"."""
    if source.startswith("step "):
        return "pool", source
    name, _, detail = source.partition(" (")
    origins: tuple[str, ...] = get_args(Origin)
    origin = _LEGACY_SOURCES.get(name) or (name if name in origins else None)
    if origin is None:
        return None, source
    return cast(Origin, origin), detail.removesuffix(")")


class OriginRecord(Record):
    """A prompt text and where it came from; reads the ``source`` string of older records."""

    text: str
    origin: Origin | None = None
    detail: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and "origin" not in data and data.get("source") is not None:
            origin, detail = _parse_source(data["source"])
            data = {**data, "origin": origin, "detail": detail}
        return data

    @property
    def origin_text(self) -> str:
        return origin_text(self.origin, self.detail)


class CandidateRecord(OriginRecord):
    """A prompt text scored on dev during a round (unscored fields are None). ``dev_n`` is how
    many dev examples the score is over: fewer than the dev split for a proposal a race
    dropped (absent in run directories written before racing)."""

    dev_loss: float | None = None
    dev_accuracy: float | None = None
    dev_n: int | None = None


class RaceStage(Record):
    """One stage of a race: ``entrants`` proposals scored on the first ``examples`` examples of
    the dev split's seeded order, of which the ``kept`` lowest by loss went on."""

    examples: int
    entrants: int
    kept: int


class RaceEntrant(OriginRecord):
    """An entrant of a start race (methods race, random-race, llm-init): ``text`` is what fits
    the prompt's P slots; ``written`` the LLM's text when the fit cut it."""

    index: int
    written: str | None = None


class RaceLeg(Record):
    """One entrant's leg of one rung of a start race: it took ``train_losses``' steps from its
    own state (rung 0, the zero-step rung, takes none), reaching ``steps`` of its own, and then
    scored ``dev_loss`` and ``dev_accuracy`` on the whole dev split."""

    rung: int
    entrant: int
    steps: int
    train_losses: tuple[float, ...] = ()
    dev_loss: float
    dev_accuracy: float
    dev_n: int


class RaceCut(Record):
    """The end of a rung: its entrants best first (by dev loss, ties by dev accuracy) and the
    ones that went on."""

    rung: int
    ranking: tuple[int, ...]
    survivors: tuple[int, ...]


class RaceRecord(Record):
    """A run's start race in results.json: the entrants, every leg and cut, the winner, and the
    optimizer steps the race took (``discarded_steps`` of them on the entrants it cut)."""

    entrants: tuple[RaceEntrant, ...]
    legs: tuple[RaceLeg, ...] = ()
    cuts: tuple[RaceCut, ...] = ()
    winner: int
    steps: int
    discarded_steps: int


class ProbeRecord(OriginRecord):
    """One entrant of a round's probes: its dev score before and after the k probe steps, the
    train loss of each step, and whether the run continued from it."""

    dev_loss_before: float
    dev_accuracy_before: float
    dev_loss: float
    dev_accuracy: float
    train_losses: tuple[float, ...] = ()
    continued: bool = False


class RoundEvent(Event):
    """What one round saw and decided. ``step`` is 0 for a search without gradients and for
    round 0 (``loop.init_round``). ``proposals`` hold the dev scores before any probe step;
    with probes, ``chosen`` holds the winner's probed score and ``probes`` every entrant.
    ``dev_prompts_scored`` and ``dev_prompts_reused`` count the round's prompts scored on the
    whole dev split and those whose known score was reused; ``race`` the stages of its race."""

    kind: ClassVar[str] = "round"
    round: int
    step: int
    pool: tuple[CandidateRecord, ...] = ()
    proposals: tuple[CandidateRecord, ...] = ()
    chosen: CandidateRecord | None = None
    reason: str | None = None
    skipped: bool = False
    skip_reason: str | None = None
    selection: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    probe_steps: int = 0
    probes: tuple[ProbeRecord, ...] = ()
    dev_prompts_scored: int = 0
    dev_prompts_reused: int = 0
    race: tuple[RaceStage, ...] = ()


class RestartEvent(CandidateRecord, Event):
    """A restart from a scored candidate (its record), after round ``round`` at ``step``, with
    the optimizer moments reset or kept."""

    kind: ClassVar[str] = "restart"
    step: int
    round: int | None = None
    moments: str | None = None
    improved: bool = False


class RaceEntrantsEvent(Event):
    """A start race's field, and what its source said (LLM status, rejected and cut texts)."""

    kind: ClassVar[str] = "race_entrants"
    entrants: tuple[RaceEntrant, ...]
    details: dict[str, Any] = Field(default_factory=dict)


class RaceLegEvent(RaceLeg, Event):
    kind: ClassVar[str] = "race_leg"


class RaceCutEvent(RaceCut, Event):
    kind: ClassVar[str] = "race_cut"


class ResumeEvent(Event):
    kind: ClassVar[str] = "resume"
    step: int
    round: int


class ErrorEvent(Event):
    kind: ClassVar[str] = "error"
    step: int
    message: str


# RunResults names RaceRecord above its definition: complete it here, or a subclass built in
# another module first (experiments.results.RunRecord) would find the name undefined.
RunResults.model_rebuild()
