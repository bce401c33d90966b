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


class _NoisyItems(torch.utils.data.Dataset):
    """Training items drawn from the global RNGs, as the harness's sampled datasets draw theirs."""

    def __len__(self) -> int:
        return 7

    def __getitem__(self, index: int) -> dict:
        import numpy as np

        x = torch.full((3,), float(index)) + torch.randn(3) + float(np.random.rand())
        return {"x": x, "y": x.sum(dim=0, keepdim=True)}


def _train(run_dir, stop_after: int | None = None):
    """A small dropout model fitted for 17 steps (2 whole batches a pass, so checkpoints fall mid-pass); with
    ``stop_after`` the training is interrupted (as by Ctrl-C) once that many steps have started."""
    from harness.training import seed_everything

    seed_everything(3)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))
    config = TrainingConfig(steps=17, batch_size=3, lr=0.01, schedule="cosine", validate_every=4, checkpoint_every=3)
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        if stop_after is not None and len(calls) > stop_after:
            raise KeyboardInterrupt
        return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])

    def validate(model):  # draws from the RNG too, as a sampled validation would
        return -float(torch.rand(1))

    best = fit(model, _NoisyItems(), config, run_dir, torch.device("cpu"), seed=3, loss_fn=loss_fn,
               validate=validate, metric_name="neg")
    return best, model.state_dict(), torch.rand(2)  # the RNG state the run goes on with


@pytest.mark.parametrize("stop_after", [4, 8, 10])
def test_interrupted_and_resumed_training_equals_the_uninterrupted_one_bit_for_bit(tmp_path, stop_after):
    """Model, optimiser, schedule, every RNG and the data order are restored, mid-pass included: the final weights,
    the best score and the random stream after training are identical."""
    best, weights, after = _train(tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "resumed", stop_after=stop_after)
    resumed_best, resumed_weights, resumed_after = _train(tmp_path / "resumed")
    assert resumed_best == best and torch.equal(resumed_after, after)
    assert all(torch.equal(resumed_weights[name], weights[name]) for name in weights)


def test_checkpoint_carries_its_checksum_and_plain_torch_still_reads_it(tmp_path):
    import hashlib

    from harness.training import CHECKSUM_TAG, load_checkpoint, save_checkpoint

    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.arange(4)})
    data = path.read_bytes()
    payload, trailer = data.split(CHECKSUM_TAG)
    assert trailer == hashlib.sha256(payload).hexdigest().encode() + b"\n"
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(4))
    assert torch.equal(load_checkpoint(path, torch.device("cpu"))["w"], torch.arange(4))
    assert not path.with_name("c.pt.tmp").exists()


@pytest.mark.parametrize("damage", ["random", "flip", "plain"])
def test_damaged_checkpoint_is_refused_by_name(tmp_path, damage):
    """256 random bytes, one flipped byte that leaves the file loadable by torch, and a file without the
    harness's checksum (plain torch.save) are all refused naming the file; a user's plain file loads on request."""
    from harness.training import CheckpointError, load_checkpoint, save_checkpoint

    path = tmp_path / "last.pt"
    save_checkpoint(path, {"w": torch.zeros(64)})
    if damage == "random":
        path.write_bytes(torch.randint(0, 256, (256,), dtype=torch.uint8).numpy().tobytes())
    elif damage == "flip":
        data = bytearray(path.read_bytes())
        start = data.index(bytes(64 * 4))  # inside the float zeros: still a valid tensor for torch
        data[start + 10] ^= 0x01
        path.write_bytes(bytes(data))
        assert torch.load(path, weights_only=True)["w"].ne(0).sum() == 1  # torch alone takes the garbage
    else:
        torch.save({"w": torch.zeros(64)}, path)
        assert load_checkpoint(path, torch.device("cpu"), require_checksum=False)["w"].eq(0).all()
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path, torch.device("cpu"))


def test_damaged_last_checkpoint_is_set_aside_and_training_restarts(tmp_path, caplog):
    """Finite garbage in last.pt is never resumed from: both checkpoints are set aside, training starts at step 0
    and ends with the weights of an undisturbed training."""
    best, weights, _ = _train(tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "damaged", stop_after=10)
    last = tmp_path / "damaged" / "last.pt"
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0x01
    last.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        damaged_best, damaged_weights, _ = _train(tmp_path / "damaged")
    assert "training restarts from step 0" in caplog.text and str(last) in caplog.text
    assert (tmp_path / "damaged" / "last.pt.corrupt").exists() and (tmp_path / "damaged" / "best.pt.corrupt").exists()
    assert damaged_best == best and all(torch.equal(damaged_weights[n], weights[n]) for n in weights)


def test_full_disk_is_reported_as_such_and_leaves_no_temporary_file(tmp_path):
    """A real ENOSPC (the temporary file is /dev/full) gives "no space left on <folder>"."""
    import os

    from harness.training import save_checkpoint

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    path = tmp_path / "last.pt"
    (tmp_path / "last.pt.tmp").symlink_to("/dev/full")
    with pytest.raises(OSError, match=f"no space left on {tmp_path}"):
        save_checkpoint(path, {"w": torch.zeros(100_000)})
    assert not (tmp_path / "last.pt.tmp").exists() and not path.exists()


def test_batch_stream_gives_the_batches_of_a_shuffling_data_loader():
    """The resumable stream changes no training: its batches over several passes are those of
    ``DataLoader(shuffle=True, generator=seeded)`` iterated pass after pass."""
    from torch.utils.data import DataLoader

    from harness.training import BatchStream

    data = [{"i": torch.tensor(i)} for i in range(10)]
    generator = torch.Generator()
    generator.manual_seed(5)
    loader = DataLoader(data, batch_size=3, shuffle=True, drop_last=True, generator=generator)
    expected = [batch["i"].tolist() for _ in range(4) for batch in loader]
    stream = BatchStream(data, batch_size=3, seed=5, drop_last=True)
    assert [next(stream)["i"].tolist() for _ in expected] == expected


def test_validation_that_is_never_a_number_fails_with_that_reason(tmp_path):
    model = torch.nn.Linear(1, 1)
    config = TrainingConfig(steps=4, batch_size=1, lr=0.1, validate_every=2, checkpoint_every=2)
    with pytest.raises(FloatingPointError, match="validation iou was never a number"):
        fit(model, [{"x": torch.ones(1)}], config, tmp_path, torch.device("cpu"), seed=0,
            loss_fn=lambda m, batch: m(batch["x"]).sum(), validate=lambda m: float("nan"), metric_name="iou")
