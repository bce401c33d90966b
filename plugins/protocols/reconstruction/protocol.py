"""The reconstruction protocol: train on query occupancies, select on validation IoU, score extracted meshes."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
import trimesh
from torch import nn

from harness.data import INDEX, IOU_OCCUPANCY, IOU_QUERY, LABEL, NORMALS, OCCUPANCY, QUERY, SURFACE
from harness.floors import (MEAN_SHAPE_RESOLUTION, SAMPLES_PER_CELL, at_level, best_level, mean_occupancy,
                            training_arrays)
from harness.geometry.extraction import extract_mesh
from harness.metrics.directions import metric
from harness.metrics.reconstruction import mean_over_classes, mesh_metrics, volumetric_iou
from harness.progress import progress
from harness.runner import RunContext
from harness.split_checks import SplitKeys
from harness.store import Metric
from harness.task_protocol import TaskProtocol
from harness.implicit import ImplicitNetwork
from harness.losses import occupancy_loss
from harness.training import as_batch, fit



class FieldNetwork(nn.Module):
    """A network whose occupancy is a fixed function of position, whatever the input: a trivial floor (the mean
    training shape, or a constant), thresholded, meshed and scored exactly as a trained network's output."""

    def __init__(self, occupancy: Callable[[np.ndarray], np.ndarray]) -> None:
        super().__init__()
        self.occupancy = occupancy

    def encode(self, batch: dict) -> None:
        return None

    def decode(self, code: None, query: torch.Tensor) -> torch.Tensor:
        probability = torch.as_tensor(np.asarray(self.occupancy(query[0].cpu().numpy()), dtype=np.float32))
        return torch.logit(probability, eps=1e-6)[None].to(query.device)


def constant_occupancy(value: float) -> Callable[[np.ndarray], np.ndarray]:
    """Occupancy ``value`` everywhere (1: all inside, 0: all outside)."""
    return lambda points: np.full(len(points), value)


class ReconstructionProtocol(TaskProtocol):
    name, selection = "reconstruction", "iou"
    floor_fields = ("iou_threshold", "threshold", "resolution0", "upsampling_steps", "fscore_threshold",
                    "eval_points", "max_eval_shapes")

    def build_model(self, ctx: RunContext) -> ImplicitNetwork:
        return ImplicitNetwork(*ctx.encoder_and_decoder(), ctx.input_key).to(ctx.device)

    # ----- training ------------------------------------------------------------------------------
    def train(self, model: ImplicitNetwork, ctx: RunContext, directory: Path) -> float:
        """Adam on summed-over-points BCE, selected on validation IoU; returns the best validation IoU."""
        return fit(model, ctx.dataset.split("train"), self.config, directory, ctx.device, ctx.seed,
                   lambda model, batch: occupancy_loss(model(batch, batch[QUERY]), batch[OCCUPANCY]),
                   validate=lambda model: self.score(model, ctx, "val"), metric_name="IoU")

    def trivial_models(self, ctx: RunContext) -> list[FieldNetwork]:
        """The mean training shape (the mean of the training queries' occupancy on a grid, bounded by the level set
        that best fits the validation shapes: a shape class mix averages to a faint field that 0.5 would leave
        nearly empty) and the two constant occupancies, all inside and all outside."""
        samples = training_arrays(ctx.dataset.split("train"), [OCCUPANCY, QUERY],
                                  min_count=SAMPLES_PER_CELL * MEAN_SHAPE_RESOLUTION ** 3)
        mean_shape = mean_occupancy(np.concatenate(samples[QUERY]), np.concatenate(samples[OCCUPANCY]))
        validation = training_arrays(ctx.dataset.split("val"), [IOU_QUERY, IOU_OCCUPANCY])
        level = best_level(mean_shape, validation[IOU_QUERY], validation[IOU_OCCUPANCY])
        return [FieldNetwork(at_level(mean_shape, level)), FieldNetwork(constant_occupancy(1.0)),
                FieldNetwork(constant_occupancy(0.0))]

    def split_keys(self, ctx: RunContext) -> SplitKeys:
        """Training reads the queries' occupancy; validation (selection and the mean shape's level) the IoU points;
        the test split those, the surface with its normals for the mesh metrics, the class and the index."""
        iou = (ctx.input_key, IOU_QUERY, IOU_OCCUPANCY)
        return {"train": (ctx.input_key, QUERY, OCCUPANCY), "val": iou,
                "test": (*iou, SURFACE, NORMALS, LABEL, INDEX)}

    # ----- evaluation ----------------------------------------------------------------------------
    def _eval_items(self, ctx: RunContext, split: str) -> list[int]:
        count = len(ctx.dataset.split(split))
        limit = self.config.max_eval_shapes
        return list(range(min(count, limit) if limit else count))

    @torch.no_grad()
    def shape_iou(self, model: ImplicitNetwork, item: dict, device: torch.device) -> float:
        batch = as_batch(item, device)
        probs = torch.sigmoid(model.decode(model.encode(batch), batch[IOU_QUERY]))[0]
        return volumetric_iou(probs.cpu().numpy(), item[IOU_OCCUPANCY].numpy(), threshold=self.config.iou_threshold)

    def score(self, model: ImplicitNetwork, ctx: RunContext, split: str) -> float:
        """Mean volumetric IoU over the split's shapes."""
        model.eval()
        data = ctx.dataset.split(split)
        return float(np.mean([self.shape_iou(model, data[i], ctx.device) for i in self._eval_items(ctx, split)]))

    @torch.no_grad()
    def evaluate(self, model: ImplicitNetwork, ctx: RunContext) -> list[Metric]:
        """Per shape: volumetric IoU and mesh metrics of the MISE mesh; then per-class and class-mean figures."""
        cfg = self.config
        model.eval()
        data = ctx.dataset.split("test")
        mesh_dir = ctx.run_dir / "meshes"
        rng = np.random.default_rng(ctx.seed)
        per_shape, classes = [], []
        for n, i in enumerate(progress(self._eval_items(ctx, "test"), desc="test")):
            item = data[i]
            batch = as_batch(item, ctx.device)
            code = model.encode(batch)

            def occupancy(points: np.ndarray) -> np.ndarray:
                query = torch.from_numpy(points).to(ctx.device).unsqueeze(0)
                return torch.sigmoid(model.decode(code, query))[0].cpu().numpy()

            vertices, faces = extract_mesh(occupancy, threshold=cfg.threshold, resolution0=cfg.resolution0,
                                           upsampling_steps=cfg.upsampling_steps)
            scores = mesh_metrics(vertices, faces, item[SURFACE].numpy(), item[NORMALS].numpy(),
                                  n_points=cfg.eval_points, rng=rng, fscore_thresholds=(cfg.fscore_threshold,))
            scores["iou"] = self.shape_iou(model, item, ctx.device)
            class_name = ctx.dataset.info.classes[int(item[LABEL])]
            per_shape.append(scores)
            classes.append(class_name)
            if n < cfg.meshes_saved and len(faces):
                mesh_dir.mkdir(parents=True, exist_ok=True)
                trimesh.Trimesh(vertices, faces, process=False).export(mesh_dir / f"{class_name}_{int(item[INDEX])}.off")
        by_class, mean = mean_over_classes(per_shape, classes)
        metrics = [metric("test", name, value) for name, value in mean.items()]
        metrics += [metric("test", name, value, class_name=c) for c, values in by_class.items()
                    for name, value in values.items()]
        return metrics
