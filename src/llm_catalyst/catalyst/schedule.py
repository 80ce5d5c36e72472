"""How a run divides its optimizer steps between stages, probes and the final stage, the rounds
that ask the proposal source, and a start race's rungs: the one place that counts them.
"""

from __future__ import annotations

from llm_catalyst.catalyst.config import LoopConfig, RaceConfig, RunConfig
from llm_catalyst.catalyst.methods import get_method
from llm_catalyst.errors import ConfigError
from llm_catalyst.records import SchedulePlan, ScheduleRecord


class Schedule(SchedulePlan):
    """Round r (1-based) follows the stage that ends at step r * m of the kept trajectory; M
    steps close the run. Probes take (t + 1) * k optimizer steps per round when every entrant
    is probed, of which the winner's k extend the kept trajectory: so round r comes after
    r * m + (r - 1 + init_round) * k trajectory steps. ``final_steps`` is M when every probe
    has all t + 1 entrants; a round that probes fewer leaves its unspent steps to the final
    stage, so every run executes exactly ``total_steps`` optimizer steps."""

    @classmethod
    def of_run(cls, config: RunConfig, train_size: int) -> Schedule:
        """The schedule of a run of ``config``. A method without rounds (plain,
        plain-text-init) ignores the loop's settings: it runs every step in one stage, so no
        loop key can make its budget fail to fit."""
        has_rounds = get_method(config.method).source is not None
        loop = config.loop if has_rounds else LoopConfig(rounds=0)
        epoch = -(-train_size // config.train.batch_size)
        return cls.plan(loop, config.train.steps, epoch)

    @classmethod
    def plan(cls, loop: LoopConfig, total_steps: int, steps_per_epoch: int) -> Schedule:
        """N, m, the probes and M for a budget of ``total_steps`` optimizer steps; raises
        ConfigError when they do not fit."""
        unstaged = cls(
            rounds=loop.rounds,
            stage_steps=0,
            final_steps=0,
            probe_steps=loop.probe_steps,
            probe_top=loop.probe_top if loop.probe_steps else 0,
            init_round=loop.init_round,
        )
        probes = unstaged.probe_budget
        if not loop.rounds:
            stage = 0  # no round, no stage before one: every step is the final stage's
        elif loop.stage_steps == "epoch":
            stage = steps_per_epoch
        elif loop.stage_steps is None:
            stage = max(total_steps - probes, 0) // (loop.rounds + 1)
        else:
            stage = loop.stage_steps
        if loop.rounds and stage < 1:
            raise ConfigError(
                f"train.steps={total_steps} is too small for loop.rounds={loop.rounds}: every "
                "round needs a gradient stage of at least one step; raise train.steps"
            )
        if loop.rounds * stage + probes > total_steps:
            probed_rounds = unstaged.rounds + unstaged.init_round
            probe_note = (
                f" and {probed_rounds} probed round(s) of (loop.probe_top + 1) x "
                f"loop.probe_steps = {(loop.probe_top + 1) * loop.probe_steps} steps"
                if probes
                else ""
            )
            raise ConfigError(
                f"loop.rounds={loop.rounds} stages of {stage} steps (loop.stage_steps="
                f"{loop.stage_steps}){probe_note} need {loop.rounds * stage + probes} steps but "
                f"train.steps={total_steps}; raise train.steps or lower loop.rounds / "
                "loop.stage_steps / loop.probe_steps / loop.probe_top"
            )
        final = total_steps - loop.rounds * stage - probes
        return unstaged.model_copy(update={"stage_steps": stage, "final_steps": final})

    @property
    def probe_budget(self) -> int:
        """Optimizer steps spent by the probes of all rounds when each has all t + 1 entrants."""
        return (self.rounds + self.init_round) * (self.probe_top + 1) * self.probe_steps

    @property
    def total_steps(self) -> int:
        return self.rounds * self.stage_steps + self.probe_budget + self.final_steps

    def stage_end(self, number: int) -> int:
        """The trajectory step after whose stage regular round ``number`` (from 1) runs."""
        earlier_probes = number - 1 + self.init_round
        return number * self.stage_steps + earlier_probes * self.probe_steps

    def stage_ends(self) -> frozenset[int]:
        """The trajectory steps at which a stage ends: there a run is checkpointed."""
        return frozenset(self.stage_end(number) for number in range(1, self.rounds + 1))

    def record(self) -> ScheduleRecord:
        """What results.json and the plan event hold: the plan and its total."""
        return ScheduleRecord(**self.model_dump(), total_steps=self.total_steps)


def survivors(field: int, eta: int) -> int:
    """How many of a rung's ``field`` entrants go on: the best 1/eta, rounded up."""
    return max(1, -(-field // eta))


def race_fields(entrants: int, race: RaceConfig) -> list[int]:
    """The field of every rung of steps of a start race of ``entrants`` (after the zero-step
    rung's cut, if any), down to the rung of two or more that leaves one."""
    field = survivors(entrants, race.eta) if race.zero_step_rung else entrants
    fields = []
    while field > 1:
        fields.append(field)
        field = survivors(field, race.eta)
    return fields


def race_steps(entrants: int, race: RaceConfig) -> int:
    """Optimizer steps a start race of ``entrants`` takes, every entrant's counted."""
    return race.rung_steps * sum(race_fields(entrants, race))


def check_race_budget(config: RunConfig, entrants: int) -> None:
    """Refuse a race that could take more than ``train.steps`` with ``entrants`` (the most the
    field can hold: the random start, the instruction and every text the source may write)."""
    race, total = config.race, config.train.steps
    need = race_steps(entrants, race)
    if need > total:
        fields = " + ".join(map(str, race_fields(entrants, race)))
        raise ConfigError(
            f"a start race of up to {entrants} entrants takes race.rung_steps={race.rung_steps} "
            f"x ({fields}) = {need} steps, more than train.steps={total}; lower "
            "race.rung_steps or llm.proposer.num_proposals, raise race.eta, set "
            "race.zero_step_rung: true, or raise train.steps"
        )
