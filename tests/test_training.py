"""The learning-rate schedules and that ``fit`` trains on them."""
from __future__ import annotations

import math

import pytest
import torch

from harness.training import fit
from harness.training_config import TrainingConfig, learning_rate


def test_constant_schedule_warms_up_linearly_then_holds():
    config = TrainingConfig(steps=100, lr=0.1, warmup_steps=4)
    assert [learning_rate(config, step) for step in range(5)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])
    assert learning_rate(config, 99) == 0.1


def test_cosine_schedule_decays_from_peak_to_zero_after_warmup():
    config = TrainingConfig(steps=110, lr=0.2, schedule="cosine", warmup_steps=10)
    assert learning_rate(config, 9) == pytest.approx(0.2)  # the warm-up's last step reaches the peak
    assert learning_rate(config, 10) == pytest.approx(0.2)
    assert learning_rate(config, 60) == pytest.approx(0.1)  # half way through the decay: cos(pi/2) = 0
    assert learning_rate(config, 35) == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)))
    assert learning_rate(config, 110) == pytest.approx(0.0, abs=1e-12)


def test_unknown_schedule_is_named():
    with pytest.raises(ValueError, match="'linear'.*constant.*cosine"):
        learning_rate(TrainingConfig(schedule="linear"), 0)


def test_fit_sets_each_steps_learning_rate(tmp_path):
    """The optimiser steps with the schedule's rate: SGD-like check through AdamW's first step, which moves each
    weight by exactly lr (Adam's normalised update is sign(grad) on the first step)."""
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    config = TrainingConfig(steps=1, batch_size=1, lr=0.5, warmup_steps=4, validate_every=1, checkpoint_every=1)
    data = [{"x": torch.ones(1)}]
    fit(model, data, config, tmp_path, torch.device("cpu"), seed=0,
        loss_fn=lambda m, batch: -m(batch["x"]).sum(), validate=lambda m: 0.0, metric_name="none")
    # step 0 of a 4-step warm-up: lr / 4; the loss gradient is negative, so the weight rises by that much
    assert model.weight.item() == pytest.approx(0.125, rel=1e-5)


def test_epochs_count_whole_batches_of_the_training_split():
    from harness.training_config import schedule_steps

    assert schedule_steps(TrainingConfig(steps=7), 1000) == 7  # no epochs: the steps
    # 100 items in batches of 32: 3 whole batches a pass (the partial fourth is dropped); 2.5 passes: 7.5 -> 8
    assert schedule_steps(TrainingConfig(steps=7, epochs=2.5, batch_size=32), 100) == 8
    assert schedule_steps(TrainingConfig(steps=9, epochs=2.5, batch_size=32), 100) == 9  # the steps when more
    assert schedule_steps(TrainingConfig(steps=1, epochs=2, batch_size=32), 10) == 2  # one batch a pass


def test_whole_epochs_as_int_or_float_make_one_schedule():
    """Shared trained weights are keyed by a hash of the schedule: epochs=10 from a profile and 10.0 from a
    typed override must be the same recipe (the quick bench once trained VoxNet twice over it)."""
    from harness.training_config import schedule_fields

    a, b = TrainingConfig(epochs=10), TrainingConfig(epochs=10.0)
    assert repr(schedule_fields(a)) == repr(schedule_fields(b)) and isinstance(a.epochs, float)


def test_fit_trains_for_its_epochs_and_decays_over_them(tmp_path):
    """With epochs giving more steps the loop runs epochs x batches steps, and the cosine schedule ends at the last
    of them."""
    from harness.curves import CURVE_FILE, read_curve

    model = torch.nn.Linear(1, 1, bias=False)
    config = TrainingConfig(steps=1, epochs=3, batch_size=2, lr=0.1, schedule="cosine", validate_every=1000,
                            checkpoint_every=1000)
    data = [{"x": torch.ones(1)} for _ in range(5)]  # 2 whole batches a pass
    fit(model, data, config, tmp_path, torch.device("cpu"), seed=0, loss_fn=lambda m, batch: m(batch["x"]).sum(),
        validate=lambda m: 0.0, metric_name="none")
    points = read_curve(tmp_path / CURVE_FILE)
    assert points[-1].step == 6 and points[-1].value == 0.0  # validated at the end, after 3 x 2 steps
    assert points[-1].lr == pytest.approx(0.05 * (1 + math.cos(math.pi * 5 / 6)))  # the rate of step 5 of 6
