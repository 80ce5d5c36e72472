"""RunConfig: the loop's schedule, the protocols' choices, and errors that name the key."""

from __future__ import annotations

import pytest
import yaml

from llm_catalyst.catalyst.config import PAPER_CHOICES, LoopConfig, load_run_config
from llm_catalyst.catalyst.schedule import Schedule
from llm_catalyst.errors import ConfigError


def test_schedule_splits_the_budget_evenly_by_default():
    schedule = Schedule.plan(LoopConfig(rounds=3), 10, 4)
    assert (schedule.rounds, schedule.stage_steps, schedule.final_steps) == (3, 2, 4)
    assert schedule.total_steps == 10
    assert [schedule.stage_end(n) for n in (1, 2, 3)] == [2, 4, 6]


def test_schedule_with_explicit_and_epoch_stages():
    explicit = Schedule.plan(LoopConfig(rounds=2, stage_steps=3), 10, 4)
    assert (explicit.stage_steps, explicit.final_steps) == (3, 4)
    epoch = Schedule.plan(LoopConfig(rounds=3, stage_steps="epoch"), 20, 4)
    assert [epoch.stage_end(n) for n in (1, 2, 3)] == [4, 8, 12] and epoch.final_steps == 8


def test_schedule_that_does_not_fit_the_budget_says_what_to_change():
    with pytest.raises(ConfigError, match=r"need 12 steps but train\.steps=10"):
        Schedule.plan(LoopConfig(rounds=3, stage_steps=4), 10, 4)
    with pytest.raises(ConfigError, match=r"raise train\.steps"):
        Schedule.plan(LoopConfig(rounds=3), 2, 4)


def test_probes_come_out_of_the_final_stage():
    # 2 rounds x (t + 1 = 3 entrants) x k = 2 probe steps = 12 of the 30 steps.
    loop = LoopConfig(rounds=2, stage_steps=5, probe_steps=2, probe_top=2)
    schedule = Schedule.plan(loop, 30, 4)
    assert (schedule.probe_budget, schedule.final_steps, schedule.total_steps) == (12, 8, 30)
    # Each earlier round's winner took k trajectory steps.
    assert [schedule.stage_end(n) for n in (1, 2)] == [5, 12]
    with_init = LoopConfig(rounds=2, stage_steps=5, probe_steps=2, init_round=True)
    schedule = Schedule.plan(with_init, 30, 4)
    assert (schedule.rounds + schedule.init_round, schedule.probe_budget, schedule.final_steps) == (
        3,
        18,
        2,
    )
    assert [schedule.stage_end(n) for n in (1, 2)] == [7, 14]
    even = Schedule.plan(LoopConfig(rounds=2, probe_steps=1, probe_top=1), 30, 4)
    assert (even.stage_steps, even.final_steps) == (8, 10), "(30 - 4) // 3 per stage"


def test_probes_that_do_not_fit_the_budget_are_refused():
    loop = LoopConfig(rounds=2, stage_steps=5, probe_steps=2, probe_top=2)
    with pytest.raises(ConfigError, match=r"probed round\(s\).*need 22 steps but train\.steps=20"):
        Schedule.plan(loop, 20, 4)


def test_first_selection_refuses_probes_it_would_not_compare():
    with pytest.raises(ConfigError, match="probe_steps"):
        load_run_config(
            None, {"data.task": "rte", "loop.selection": "first", "loop.probe_steps": 2}
        )


def test_zero_rounds_is_plain_training():
    schedule = Schedule.plan(LoopConfig(rounds=0), 7, 4)
    assert (schedule.rounds, schedule.final_steps) == (0, 7)


def test_paper_protocol_applies_the_reference_choices():
    config = load_run_config(None, {"protocol": "paper", "data.task": "rte"})
    assert config.loop.rounds == 3 and config.loop.stage_steps == "epoch"
    assert config.loop.selection == "first" and config.loop.moments == "keep"
    assert config.llm.proposer.template == "paper" and config.llm.proposer.num_proposals == 3
    # The reference asks for exactly its 3 templates, from an API model without DRY sampling.
    assert config.llm.proposer.spare == 0 and config.llm.sampling.dry_multiplier == 0
    assert set(PAPER_CHOICES) == {
        "loop.rounds",
        "loop.stage_steps",
        "loop.selection",
        "loop.moments",
        "llm.proposer.template",
        "llm.proposer.num_proposals",
        "llm.proposer.spare",
        "llm.sampling.dry_multiplier",
    }


def test_keys_set_by_the_user_win_over_the_protocol(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump(
            {"protocol": "paper", "data": {"task": "rte"}, "loop": {"selection": "margin"}}
        )
    )
    config = load_run_config(path, {"llm.proposer.num_proposals": 5})
    assert config.loop.selection == "margin" and config.llm.proposer.num_proposals == 5
    assert config.loop.moments == "keep", "unset keys still get the protocol's choice"


def test_fewshot_protocol_keeps_the_defaults():
    config = load_run_config(None, {"data.task": "rte"})
    assert config.protocol == "fewshot" and config.method == "catalyst"
    assert config.loop.selection == "margin" and config.loop.moments == "reset"
    assert config.llm.proposer.template == "auto"


def test_a_resolved_paper_config_reads_back_unchanged():
    config = load_run_config(None, {"protocol": "paper", "data.task": "rte"})
    tree = yaml.safe_load(yaml.safe_dump(config.model_dump(mode="json")))
    assert load_run_config(None, tree) == config


def test_errors_name_the_file_and_the_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  task: rte\nloop:\n  selection: greedy\n  pool_size: 0\n")
    with pytest.raises(ConfigError) as error:
        load_run_config(path)
    message = str(error.value)
    assert str(path) in message
    assert "loop.selection" in message and "loop.pool_size" in message
    with pytest.raises(ConfigError, match="method"):
        load_run_config(None, {"data.task": "rte", "method": "gradient-free"})
