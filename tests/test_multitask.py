"""Multi-task and hold-out protocols: task checks, joint-decoder slicing, a frozen encoder that stays frozen."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from harness_plugins.protocols.multitask.protocol import build_model, check_tasks

from harness.config import component_config, compose_config, register_configs
from harness.data import LABEL, OCCUPANCY, PART, QUERY
from harness.losses import class_loss, occupancy_loss, part_loss
from harness.registry import default_registry
from harness.runner import RunContext, execute, resolve_specs
from harness.training import load_checkpoint, make_loader


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    registry = default_registry()
    register_configs(registry)

    def run(*overrides: str):
        return execute(compose_config(["profile=smoke", *overrides]), registry)
    return run


def values(outcome) -> dict:
    return {(m.split, m.name, m.class_name): m.value for m in outcome.metrics}


def test_task_checks_name_the_problem():
    targets = ("occupancy", "part", "label")
    with pytest.raises(ValueError, match="expected a non-empty subset"):
        check_tasks(["colour"], "parallel", targets, "d")
    with pytest.raises(ValueError, match="decoders=joint decodes occupancy and segmentation together"):
        check_tasks(["occupancy", "classification"], "joint", targets, "d")
    with pytest.raises(ValueError, match=r"tasks \['segmentation'\] need part"):
        check_tasks(["occupancy", "segmentation"], "parallel", ("occupancy", "label"), "d")


@pytest.mark.parametrize("decoders", ["parallel", "joint"])
def test_multitask_reports_every_task(run, decoders):
    outcome = run("protocol=multitask", f"protocol.decoders={decoders}")
    scores = values(outcome)
    for name in ("iou", "chamfer_l1", "top1", "mean_class_top1", "miou", "class_miou"):
        assert ("test", name, None) in scores


def test_joint_decoder_losses_are_the_sliced_single_task_losses(tmp_path):
    registry = default_registry()
    register_configs(registry)
    cfg = compose_config(["profile=smoke", "protocol=multitask", "protocol.decoders=joint"])
    specs = resolve_specs(cfg, registry)
    dataset = specs["dataset"].build(component_config(cfg, specs["dataset"]), cache_dir=tmp_path)
    ctx = RunContext(cfg=cfg, specs=specs, dataset=dataset, device=torch.device("cpu"), run_dir=tmp_path, seed=0,
                     registry=registry)
    model = build_model(ctx, ["occupancy", "classification", "segmentation"], "joint", cfg.protocol.heads).eval()
    batch = next(iter(make_loader(dataset.split("train"), 4, shuffle=False, seed=0)))
    losses = model.losses(batch)
    occupancy = model.view("occupancy")(batch, batch[QUERY])
    parts = model.view("segmentation")(batch, batch[QUERY])
    assert occupancy.shape == batch[OCCUPANCY].shape and parts.shape[-1] == len(dataset.info.parts)
    torch.testing.assert_close(losses["occupancy"], occupancy_loss(occupancy, batch[OCCUPANCY]))
    torch.testing.assert_close(losses["segmentation"], part_loss(parts, batch[PART]))
    torch.testing.assert_close(losses["classification"], class_loss(model.view("classification")(batch), batch[LABEL]))


def test_holdout_keeps_the_stage1_encoder_frozen(run, tmp_path):
    outcome = run("protocol=holdout", "protocol.task=classification", "protocol.steps=6")
    scores = values(outcome)
    assert ("test", "top1", None) in scores and ("val", "stage1_iou", None) in scores
    run_dir = next((tmp_path / "runs").iterdir())
    stage1 = load_checkpoint(run_dir / "stage1" / "model.pt", torch.device("cpu"))["model"]
    stage2 = load_checkpoint(run_dir / "stage2" / "best.pt", torch.device("cpu"))["model"]
    encoder1 = {k[len("encoder."):]: v for k, v in stage1.items() if k.startswith("encoder.")}
    encoder2 = {k[len("encoder.encoder."):]: v for k, v in stage2.items() if k.startswith("encoder.encoder.")}
    assert encoder1.keys() == encoder2.keys() and encoder1
    for key in encoder1:  # weights and batch-norm statistics alike
        assert torch.equal(encoder1[key], encoder2[key]), key
    head = [k for k in stage2 if k.startswith("heads.classification.")]
    assert head


def test_holdout_task_must_be_held_out(run):
    with pytest.raises(Exception, match="must not train the encoder"):
        run("protocol=holdout", "protocol.task=occupancy")


def test_a_decoder_the_protocol_does_not_take_is_left_out_of_the_run(run):
    first = run("protocol=multitask", "protocol.tasks=[classification]", "protocol.steps=2")
    second = run("protocol=multitask", "protocol.tasks=[classification]", "protocol.steps=2", "decoder=segmentation")
    assert first.status == "succeeded" and second.status == "skipped"
    assert first.identity == second.identity


def test_holdout_results_do_not_depend_on_whether_stage1_was_cached(run):
    # a seed no other test uses: the first run trains stage 1, the forced rerun loads it from the cache,
    # and the fresh stage-2 head must start from the same weights either way
    trained = run("protocol=holdout", "protocol.task=classification", "protocol.steps=6", "seed=2024")
    cached = run("protocol=holdout", "protocol.task=classification", "protocol.steps=6", "seed=2024", "force=true")
    assert values(trained) == values(cached)


def test_the_onet_encoder_of_a_holdout_is_the_reconstruction_runs_training(run, tmp_path):
    """Stage 1 on occupancy alone has the reconstruction protocol's recipe: after a reconstruction run of the same
    encoder and decoder (and seed) the hold-out trains no encoder, and its stage-1 weights are the reconstruction
    run's."""
    from harness.trained import WEIGHTS

    trained = Path(os.environ["HARNESS_CACHE"]) / "trained"  # the session's shared cache
    reconstruction = run("protocol=reconstruction", "encoder=pointnet", "decoder=occupancy", "seed=31")
    entries = sorted(trained.iterdir())
    holdout = run("protocol=holdout", "protocol.task=classification", "seed=31")
    assert sorted(trained.iterdir()) == entries  # stage 1 trained nothing new

    def weights(path: Path) -> dict:
        return torch.load(path, weights_only=True)["model"]

    onet = weights(tmp_path / "runs" / reconstruction.identity[:16] / WEIGHTS)
    stage1 = weights(tmp_path / "runs" / holdout.identity[:16] / "stage1" / WEIGHTS)
    assert onet.keys() == stage1.keys() and all(torch.equal(onet[key], stage1[key]) for key in onet)
    # stage 1 is scored by the run that trained it: the hold-out reports its validation IoU only
    assert values(holdout)["val", "stage1_iou", None] == values(reconstruction)["val", "iou", None]
    assert ("test", "iou", None) not in values(holdout)
