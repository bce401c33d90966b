"""The contextualise protocol: the stages of the contextualising paper's Table 1 and their evaluation.

Stages (each a :func:`harness.training.fit` with the config's schedule):

- stage 1, *geometric*: encoder + UDF decoder on ``udf_loss``; selected on the validation queries' mean clamped
  L1 (``udf_l1``, lower is better). Trained once per recipe (:func:`harness.trained.train_once`): every row on
  stage 1 and every ``cross_dataset`` run with the same source data reuses it.
- *baseline*: encoder + UDF + semantic decoders on ``UncertaintyWeighting`` of ``udf_loss`` and
  ``semantic_loss``; selected on the validation queries' semantic mIoU (``query_miou``). Trained once per recipe.
- stage 2 on a frozen encoder (*frozen*, *context*): the encoder is stage 1's, frozen (evaluation mode, no
  gradients, batch-norm statistics untouched). Its encoding of every training and validation scene is computed
  once (the training scenes' input draws fixed by the seed) and kept, as the paper fixes the encodings: only the
  semantic decoder (and the contextualiser) train, on freshly drawn queries each step. Selected on
  ``query_miou``.
- stage 2 *unfrozen*: a copy of stage 1's encoder, trained with a fresh semantic decoder on ``semantic_loss``
  alone (batch-norm statistics update too); the reconstruction is evaluated with stage 1's UDF decoder on the
  changed encoder.

Evaluation (:func:`evaluate_scenes`): per test scene, the encoding of its (fixed) input points; the surface
extracted from the UDF decoder by gradient-direction marching cubes on a ``resolution``^3 grid over the unit
cube (:func:`harness.geometry.udf_extraction.extract_udf_mesh`, distances without gradients on the full grid,
autograd gradients at active cells); ``eval_points`` area-uniform samples of it, scored against the scene's
ground-truth surface points, and labelled by the semantic decoder (argmax) for the semantic metrics
(:func:`harness.metrics.scene.mesh_scene_metrics`). Figures are means over the test scenes; the per-class IoU
is the mean over the scenes where the class occurs (as a target or a prediction). ``udf_l1`` is the UDF
decoder's mean clamped L1 error over the test scenes' queries (as stage 1 is selected on the validation ones).
Trivial floors (:func:`scene_floors`: the majority training class, the best constant UDF) are recorded beside.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from harness.data import INDEX, POINTS, POINTS_SEMANTIC, QUERY, SEMANTIC, SURFACE, SURFACE_SEMANTIC, UDF
from harness.floors import (FLOOR_SPLIT, best_constant_l1, cached_for_run, majority_label, mean_absolute_error,
                            metrics_from_json, metrics_to_json, training_arrays)
from harness.losses import UncertaintyWeighting, inverse_log_frequency, semantic_loss, udf_loss
from harness.metrics.directions import metric
from harness.runner import RunContext
from harness.specs import Kind
from harness.split_checks import check_splits, merge_split_keys
from harness.store import Metric
from harness.trained import recipe, train_once
from harness.training import as_batch, fit, seed_everything
from harness.training_config import schedule_fields

from ..holdout.protocol import Frozen
from . import ROWS, TSNE_FILE, ContextualiseConfig, SceneStagesConfig

log = logging.getLogger(__name__)
ENC_XYZ, ENC_FEATURES = "encoding_xyz", "encoding_features"  # a stored frozen encoding in a training item
CLAMP = 0.1  # udf_loss's clamp: validation compares distances clamped alike
SEMANTIC_METRICS = ["miou", "mf1_delta", "mf1_2delta"]


# ----- models ---------------------------------------------------------------------------------------------------

class Geometric(nn.Module):
    """Stage 1: encoder + UDF decoder, trained on the UDF loss alone."""

    def __init__(self, encoder: nn.Module, udf: nn.Module, input_key: str) -> None:
        super().__init__()
        self.encoder, self.udf, self.input_key = encoder, udf, input_key

    def loss(self, batch: dict) -> torch.Tensor:
        return udf_loss(self.udf(batch[QUERY], self.encoder(batch[self.input_key])), batch[UDF], CLAMP)


class Joint(nn.Module):
    """The baseline: encoder + UDF and semantic decoders, losses balanced by learned uncertainty weighting."""

    def __init__(self, encoder: nn.Module, udf: nn.Module, semantic: nn.Module, input_key: str,
                 class_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.encoder, self.udf, self.semantic, self.input_key = encoder, udf, semantic, input_key
        self.weighting = UncertaintyWeighting(["udf", "semantic"])
        self.class_weight = class_weight

    def loss(self, batch: dict) -> torch.Tensor:
        encoding = self.encoder(batch[self.input_key])
        return self.weighting({"udf": udf_loss(self.udf(batch[QUERY], encoding), batch[UDF], CLAMP),
                               "semantic": semantic_loss(self.semantic(batch[QUERY], encoding), batch[SEMANTIC],
                                                         self.class_weight)})


class OnEncoding(nn.Module):
    """Stage 2 on a frozen encoder: (the contextualiser and) the semantic decoder, reading stored encodings."""

    def __init__(self, semantic: nn.Module, context: nn.Module | None = None,
                 class_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.semantic, self.context, self.class_weight = semantic, context, class_weight

    def forward(self, query: torch.Tensor, encoding: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.semantic(query, self.context(encoding) if self.context is not None else encoding)

    def loss(self, batch: dict) -> torch.Tensor:
        return semantic_loss(self(batch[QUERY], (batch[ENC_XYZ], batch[ENC_FEATURES])), batch[SEMANTIC],
                             self.class_weight)


class Unfrozen(nn.Module):
    """Stage 2 without freezing: stage 1's encoder and a fresh semantic decoder on the semantic loss alone."""

    def __init__(self, encoder: nn.Module, semantic: nn.Module, input_key: str,
                 class_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.encoder, self.semantic, self.input_key, self.class_weight = encoder, semantic, input_key, class_weight

    def loss(self, batch: dict) -> torch.Tensor:
        return semantic_loss(self.semantic(batch[QUERY], self.encoder(batch[self.input_key])), batch[SEMANTIC],
                             self.class_weight)


@dataclass
class RowParts:
    """What a row evaluates: the encoder of a scene's input, the UDF decoder reconstruction is measured with, and
    (rows with semantics) the semantic decoder with the contextualiser in front of it, if any."""

    encoder: nn.Module
    udf: nn.Module
    semantic: nn.Module | None = None
    context: nn.Module | None = None
    stage1: Geometric | None = None  # stage 1's trained model, for rows built on it

    def semantic_encoding(self, encoding: Any) -> Any:
        return self.context(encoding) if self.context is not None else encoding

    def eval(self) -> "RowParts":
        for part in (self.encoder, self.udf, self.semantic, self.context):
            if part is not None:
                part.eval()
        return self


# ----- data -----------------------------------------------------------------------------------------------------

class EncodedScenes(torch.utils.data.Dataset):
    """Items of ``split`` (fresh queries each time for training splits) with the stored encoding of their scene."""

    def __init__(self, split: Any, encodings: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.split, self.encodings = split, encodings

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict:
        item = self.split[index]
        xyz, features = self.encodings[index]
        return {QUERY: item[QUERY], SEMANTIC: item[SEMANTIC], INDEX: item[INDEX], ENC_XYZ: xyz, ENC_FEATURES: features}


@torch.no_grad()
def encode_scenes(encoder: nn.Module, split: Any, input_key: str, device: torch.device,
                  seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The encoding of every scene of ``split`` (evaluation mode), each from one input draw fixed by ``seed``."""
    encoder.eval()
    encodings = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for index in range(len(split)):
            xyz, features = encoder(split[index][input_key][None].to(device))
            encodings.append((xyz[0].cpu(), features[0].cpu()))
    return encodings


# ----- validation scores (higher is better) ---------------------------------------------------------------------

def clamped_l1(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|clamp(predicted) - clamp(true)| per query: ``udf_loss``'s clamp, so far queries do not dominate
    (``udf_l1``, the validation score and the test metric alike)."""
    return (predicted.clamp(max=CLAMP) - target.clamp(max=CLAMP)).abs()


@torch.no_grad()
def negative_udf_l1(model: Geometric, data: Any, device: torch.device) -> float:
    """Minus the mean :func:`clamped_l1` over the validation queries."""
    model.eval()
    total, count = 0.0, 0
    for index in range(len(data)):
        batch = as_batch(data[index], device)
        total += float(clamped_l1(model.udf(batch[QUERY], model.encoder(batch[model.input_key])), batch[UDF]).sum())
        count += batch[UDF].numel()
    return -total / max(count, 1)


@torch.no_grad()
def query_miou(logits_of: Callable[[int, dict], torch.Tensor], data: Any, classes: int, device: torch.device) -> float:
    """mIoU of the predicted labels at the validation queries (counts pooled over the scenes; classes present as a
    target or a prediction). ``logits_of(index, batch)`` -> [1, M, C]."""
    confusion = torch.zeros(classes * classes, dtype=torch.int64)
    for index in range(len(data)):
        batch = as_batch(data[index], device)
        labels = batch[SEMANTIC].reshape(-1)
        predicted = logits_of(index, batch).reshape(labels.numel(), -1).argmax(-1)
        keep = labels >= 0
        confusion += torch.bincount((labels[keep] * classes + predicted[keep]).cpu(), minlength=classes * classes)
    matrix = confusion.reshape(classes, classes).double()
    tp = matrix.diag()
    union = matrix.sum(0) + matrix.sum(1) - tp
    return float((tp[union > 0] / union[union > 0]).mean()) if bool((union > 0).any()) else 0.0


# ----- the stages -----------------------------------------------------------------------------------------------

@dataclass
class TrainingData:
    """What stage 1 trains and is validated on, and what identifies it in the recipe."""

    train: Any
    val: Any
    key: list[dict[str, Any]]  # per dataset: its fingerprint and the item sizes training draws


def data_key(config: Any, fingerprint: str) -> dict[str, Any]:
    """A dataset in a recipe: its fingerprint and the item sizes (not part of the fingerprint) training draws."""
    sizes = {name: getattr(config, name) for name in ("input_points", "query_points") if hasattr(config, name)}
    return {"fingerprint": fingerprint, **sizes}


def stage1_split_keys(input_key: str) -> dict[str, tuple[str, ...]]:
    """What stage 1 reads: the input and the queries' distances, of the training and validation scenes."""
    geometry = (input_key, QUERY, UDF)
    return {"train": geometry, "val": geometry}


def scene_split_keys(input_key: str, semantics: bool, tsne: bool) -> dict[str, tuple[str, ...]]:
    """What a row's stages, evaluation and floors read of each split: stage 1's keys, the test scenes' queries'
    distances and surface; with ``semantics`` the queries' labels (stage 2, the baseline), a training item's index (its
    stored encoding) and the surface labels (the floor's majority class, the test metrics); with ``tsne`` the first
    test scene's points and their labels."""
    semantic = {"train": (QUERY, SEMANTIC, INDEX, SURFACE_SEMANTIC), "val": (QUERY, SEMANTIC),
                "test": (SURFACE_SEMANTIC,)} if semantics else {}
    return merge_split_keys(stage1_split_keys(input_key), {"test": (input_key, QUERY, UDF, SURFACE)}, semantic,
                            {"test": (POINTS, POINTS_SEMANTIC)} if tsne else {})


def own_data(ctx: RunContext) -> TrainingData:
    return TrainingData(ctx.dataset.split("train"), ctx.dataset.split("val"),
                        [data_key(ctx.config("dataset"), ctx.dataset.info.fingerprint)])


class SceneStages:
    """Builds, trains (or reuses) and evaluates the stages; shared by ``contextualise`` and ``cross_dataset``."""

    def __init__(self, ctx: RunContext, config: SceneStagesConfig) -> None:
        self.ctx, self.config = ctx, config
        self.info = ctx.dataset.info
        self.device = ctx.device

    # -- parts
    def head_spec_and_config(self, head: str) -> tuple[Any, Any]:
        """The decoder of ``head`` (udf, semantic, context): its spec, and its config with the run's profile and
        then ``protocol.<head>``'s overrides."""
        spec, config = self.ctx.named_spec_and_config(Kind.DECODER, self.config.heads[head])
        overrides = dict(getattr(self.config, head))
        if overrides:
            unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(config)})
            if unknown:
                raise ValueError(f"protocol.{head} overrides unknown field(s) {unknown} of decoder {spec.name}")
            config = dataclasses.replace(config, **overrides)
        return spec, config

    def head(self, name: str, encoding: Any) -> nn.Module:
        spec, config = self.head_spec_and_config(name)
        return spec.build(config, encoding, self.info).to(self.device)

    def recipe(self, stage: str, heads: Sequence[str], data: list[dict[str, Any]]) -> dict[str, Any]:
        parts = {"encoder": (self.ctx.specs["encoder"], self.ctx.config("encoder"))}
        parts.update({f"head_{name}": self.head_spec_and_config(name) for name in heads})
        trainer = {"stage": stage, **schedule_fields(self.config)}
        if "semantic" in heads:  # the semantic loss's weighting decides only stages that train semantics
            trainer["class_weights"] = self.config.class_weights
        result = recipe(self.ctx, "contextualise", trainer, parts)
        result["dataset"] = data
        return result

    def fit(self, model: nn.Module, train_data: Any, directory: Path, validate: Callable[[], float],
            name: str) -> float:
        return fit(model, train_data, self.config, directory, self.device, self.ctx.seed,
                   lambda model, batch: model.loss(batch), validate=lambda model: validate(), metric_name=name)

    def class_weight(self) -> torch.Tensor | None:
        """The semantic loss's class weights (``class_weights``), from the run's training queries' labels."""
        if self.config.class_weights == "none":
            return None
        if self.config.class_weights != "inverse_log":
            raise ValueError(f"protocol.class_weights={self.config.class_weights!r}: expected 'none' or 'inverse_log'")
        labels = training_arrays(self.ctx.dataset.split("train"), [SEMANTIC])[SEMANTIC]
        weight = inverse_log_frequency(torch.as_tensor(np.concatenate(labels)).reshape(-1),
                                       len(self.info.semantic_classes))
        return weight.to(self.device)

    def start(self) -> None:
        """Seed every stage afresh, so what it builds and draws does not depend on whether an earlier stage was
        trained in this process or loaded from the cache."""
        seed_everything(self.ctx.seed)

    # -- stage 1 and the baseline (trained once per recipe)
    def geometric(self, data: TrainingData, directory: Path) -> tuple[Geometric, float]:
        """Stage 1 (trained, or reused); returns it and its best validation ``udf_l1``."""
        self.start()
        encoder = self.ctx.build("encoder", self.info).to(self.device)
        model = Geometric(encoder, self.head("udf", encoder.encoding), self.ctx.input_key)
        best = train_once(self.ctx, model, self.recipe("geometric", ["udf"], data.key), directory,
                          lambda directory: self.fit(model, data.train, directory,
                                                     lambda: negative_udf_l1(model, data.val, self.device), "-udf_l1"))
        return model.eval(), -best

    def baseline(self, directory: Path) -> tuple[Joint, float]:
        self.start()
        encoder = self.ctx.build("encoder", self.info).to(self.device)
        model = Joint(encoder, self.head("udf", encoder.encoding), self.head("semantic", encoder.encoding),
                      self.ctx.input_key, self.class_weight())
        val = self.ctx.dataset.split("val")
        classes = len(self.info.semantic_classes)

        def validate() -> float:
            model.eval()
            return query_miou(lambda _, b: model.semantic(b[QUERY], model.encoder(b[model.input_key])), val, classes,
                              self.device)

        data = own_data(self.ctx)
        best = train_once(self.ctx, model, self.recipe("baseline", ["udf", "semantic"], data.key), directory,
                          lambda directory: self.fit(model, data.train, directory, validate, "query_miou"))
        return model.eval(), best

    # -- stage 2
    def on_frozen(self, stage1: Geometric, with_context: bool, directory: Path) -> tuple[RowParts, float]:
        """The semantic decoder (after the contextualiser when ``with_context``) on stage 1's frozen encoder."""
        self.start()
        frozen = Frozen(stage1.encoder)
        context = self.head("context", frozen.encoding) if with_context else None
        semantic = self.head("semantic", context.encoding if context is not None else frozen.encoding)
        model = OnEncoding(semantic, context, self.class_weight())
        dataset, key = self.ctx.dataset, self.ctx.input_key
        train = EncodedScenes(dataset.split("train"), encode_scenes(frozen, dataset.split("train"), key, self.device,
                                                                    self.ctx.seed))
        val = dataset.split("val")
        val_encodings = encode_scenes(frozen, val, key, self.device, self.ctx.seed)
        classes = len(self.info.semantic_classes)

        def validate() -> float:
            model.eval()
            return query_miou(lambda i, b: model(b[QUERY], tuple(t[None].to(self.device) for t in val_encodings[i])),
                              val, classes, self.device)

        best = self.fit(model, train, directory, validate, "query_miou")
        return RowParts(frozen, stage1.udf, semantic, context, stage1).eval(), best

    def unfrozen(self, stage1: Geometric, directory: Path) -> tuple[RowParts, float]:
        self.start()
        encoder = copy.deepcopy(stage1.encoder).requires_grad_(True)
        semantic = self.head("semantic", encoder.encoding)
        model = Unfrozen(encoder, semantic, self.ctx.input_key, self.class_weight())
        val = self.ctx.dataset.split("val")
        classes = len(self.info.semantic_classes)

        def validate() -> float:
            model.eval()
            return query_miou(lambda _, b: semantic(b[QUERY], encoder(b[model.input_key])), val, classes, self.device)

        best = self.fit(model, self.ctx.dataset.split("train"), directory, validate, "query_miou")
        return RowParts(encoder, stage1.udf, semantic, None, stage1).eval(), best


# ----- evaluation -----------------------------------------------------------------------------------------------

def _chunked(fn: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor, chunk: int) -> torch.Tensor:
    return torch.cat([fn(points[i:i + chunk]) for i in range(0, len(points), chunk)]) if len(points) else fn(points)


def _scene_field(parts: RowParts, encoding: Any, device: torch.device, chunk: int) -> Callable:
    """The UDF of one encoded scene: points [P, 3] -> distances [P]."""
    def distances(points: torch.Tensor) -> torch.Tensor:
        return _chunked(lambda p: parts.udf(p[None].to(device), encoding)[0], points, chunk)
    return distances


def _scene_labels(parts: RowParts, encoding: Any, device: torch.device, chunk: int) -> Callable:
    """The semantic decoder's labels in one encoded scene: points [P, 3] (numpy) -> class ids [P]."""
    with torch.no_grad():
        semantic_encoding = parts.semantic_encoding(encoding)

    @torch.no_grad()
    def labels(points: np.ndarray) -> np.ndarray:
        query = torch.as_tensor(np.asarray(points, dtype=np.float32), device=device)
        return _chunked(lambda q: parts.semantic(q[None], semantic_encoding)[0].argmax(-1), query, chunk).cpu().numpy()
    return labels


def scenes_evaluated(ctx: RunContext, config: SceneStagesConfig) -> tuple[Any, int]:
    """The test split and how many of its scenes are evaluated (``max_eval_scenes``)."""
    test = ctx.dataset.split("test")
    scenes = len(test) if config.max_eval_scenes <= 0 else min(len(test), config.max_eval_scenes)
    if scenes == 0:
        raise ValueError(f"dataset {ctx.dataset.info.name} has no test scenes to evaluate")
    return test, scenes


def scene_means(split: str, per_scene: list[dict[str, Any]], names: list[str], classes: Sequence[str]) -> list[Metric]:
    """Figures averaged over the scenes, and (with ``classes``) each class's IoU averaged over the scenes where the
    class occurs (as a target or a prediction), as ``miou`` with the class name."""
    metrics = [metric(split, name, float(np.mean([scene[name] for scene in per_scene]))) for name in names]
    if classes:
        iou = np.array([scene["iou_per_class"] for scene in per_scene], dtype=np.float64)  # [scenes, C]
        for c, name in enumerate(classes):
            if np.isfinite(iou[:, c]).any():
                metrics.append(metric(split, "miou", float(np.nanmean(iou[:, c])), class_name=name))
    return metrics


def evaluate_scenes(ctx: RunContext, config: SceneStagesConfig, parts: RowParts, semantics: bool) -> list[Metric]:
    """Test metrics of a row (module docstring): reconstruction always, semantics when ``semantics``; and
    ``udf_l1``, the mean :func:`clamped_l1` of the UDF decoder over the scenes' test queries."""
    from harness.geometry.udf_extraction import autograd_field, extract_udf_mesh, torch_distance
    from harness.metrics.scene import mesh_scene_metrics

    test, scenes = scenes_evaluated(ctx, config)
    classes = ctx.dataset.info.semantic_classes
    device, chunk = ctx.device, int(config.eval_chunk)
    per_scene: list[dict[str, Any]] = []
    udf_error, queries = 0.0, 0
    mesh_dir = ctx.run_dir / "meshes"
    for index in range(scenes):
        item = test[index]
        with torch.no_grad():
            encoding = parts.encoder(item[ctx.input_key][None].to(device))
        distances = _scene_field(parts, encoding, device, chunk)
        with torch.no_grad():
            udf_error += float(clamped_l1(distances(item[QUERY]), item[UDF].to(device)).sum())
        queries += item[UDF].numel()
        vertices, faces = extract_udf_mesh(autograd_field(distances, device), int(config.resolution),
                                           batch_points=chunk, udf=torch_distance(distances, device))
        if index < config.meshes_saved and len(faces):
            import trimesh

            mesh_dir.mkdir(parents=True, exist_ok=True)
            trimesh.Trimesh(vertices, faces, process=False).export(mesh_dir / f"test_{index}.ply")
        label_fn = _scene_labels(parts, encoding, device, chunk) if semantics else None
        gt_labels = item[SURFACE_SEMANTIC].numpy() if semantics else None
        per_scene.append(mesh_scene_metrics(vertices, faces, item[SURFACE].numpy(), gt_labels, label_fn,
                                            n_points=int(config.eval_points),
                                            rng=np.random.default_rng([ctx.seed, index]), delta=float(config.delta),
                                            num_classes=len(classes) if semantics else None))
        log.info("test scene %d/%d: %d vertices, %s", index + 1, scenes, len(vertices),
                 ", ".join(f"{k} {v:.4g}" for k, v in per_scene[-1].items() if isinstance(v, float)))
    names = ["cd_l1", "cd_l2", "f1_delta", "f1_2delta"] + (SEMANTIC_METRICS if semantics else [])
    return ([metric("test", "udf_l1", udf_error / queries)]
            + scene_means("test", per_scene, names, classes if semantics else ()))


def scene_floors(ctx: RunContext, config: SceneStagesConfig, semantics: bool) -> list[Metric]:
    """The trivial floors of the scene metrics (split ``floor``; the semantic ones when ``semantics``, for the rows
    that evaluate them), cached per dataset and evaluation setting:

    - ``udf_l1``: the best constant UDF, the median of the training queries' clamped distances (the constant of
      least mean :func:`clamped_l1`), scored on the evaluated test scenes' queries;
    - ``f1_delta``, ``f1_2delta``: that constant is positive, so its zero set (the surface) is empty, and no
      predicted point lies within δ of the ground truth: recall 0, F1 0 whatever the precision; computed by the
      metric code on the empty surface (Chamfer distances get none: theirs would be the empty-prediction
      convention, not a distance);
    - ``miou``, ``mf1_delta``, ``mf1_2delta`` (and the IoU per class): the most frequent class of the training
      scenes' labelled surface points, predicted at every ground-truth surface point of a test scene (a perfect
      surface), scored by the protocol's semantic metric code.
    """
    setting = {"delta": config.delta, "max_eval_scenes": config.max_eval_scenes, "semantics": semantics}
    return cached_for_run(ctx, "contextualise", setting,
                          lambda: metrics_to_json(_scene_floors(ctx, config, semantics)), metrics_from_json)


def _scene_floors(ctx: RunContext, config: SceneStagesConfig, semantics: bool) -> list[Metric]:
    from harness.metrics.scene import scene_metrics, semantic_metrics

    training = training_arrays(ctx.dataset.split("train"), [UDF] + ([SURFACE_SEMANTIC] if semantics else []))
    constant = best_constant_l1(np.minimum(np.concatenate(training[UDF]), CLAMP))
    test, scenes = scenes_evaluated(ctx, config)
    items = [test[index] for index in range(scenes)]
    targets = np.minimum(np.concatenate([item[UDF].numpy() for item in items]), CLAMP)
    metrics = [metric(FLOOR_SPLIT, "udf_l1", mean_absolute_error(targets, constant))]
    names = ["f1_delta", "f1_2delta"] if constant > 0 else []
    per_scene = [scene_metrics(np.zeros((0, 3), np.float32), item[SURFACE].numpy(), delta=config.delta)
                 for item in items]
    classes: Sequence[str] = ()
    if semantics:
        classes, names = ctx.dataset.info.semantic_classes, names + SEMANTIC_METRICS
        majority = majority_label(np.concatenate(training[SURFACE_SEMANTIC]))
        for figures, item in zip(per_scene, items):
            surface = item[SURFACE].numpy()
            figures.update(semantic_metrics(surface, np.full(len(surface), majority), surface,
                                            item[SURFACE_SEMANTIC].numpy(), config.delta, len(classes)))
    return metrics + scene_means(FLOOR_SPLIT, per_scene, names, classes)


# ----- t-SNE of frozen vs contextualised features ---------------------------------------------------------------

def tsne_embedding(features: np.ndarray, perplexity: float, iterations: int, seed: int) -> np.ndarray:
    """2D t-SNE (scikit-learn, Barnes-Hut, PCA initialisation, fixed seed) of ``features`` [P, F]."""
    from sklearn.manifold import TSNE

    perplexity = float(min(perplexity, max(1.0, (len(features) - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perplexity, max_iter=max(250, int(iterations)), init="pca",
                learning_rate="auto", random_state=seed)
    return tsne.fit_transform(np.asarray(features, dtype=np.float32)).astype(np.float32)


@torch.no_grad()
def save_tsne(ctx: RunContext, config: SceneStagesConfig, parts: RowParts, path: Path) -> Path | None:
    """Sample the encoded points of the first test scene (those with a label), and save their frozen features E_g,
    contextualised features E_s = E_g (+) E_c, labels and the 2D t-SNE embeddings of E_g, E_c and E_s."""
    from pykdtree.kdtree import KDTree

    if config.tsne_points <= 0 or parts.context is None:
        return None
    item = ctx.dataset.split("test")[0]
    encoding = parts.encoder(item[ctx.input_key][None].to(ctx.device))
    xyz, frozen = (t[0].cpu().numpy() for t in encoding)
    contextualised = parts.context(encoding)[1][0].cpu().numpy()
    # each encoded point takes the label of its nearest input point
    source = item[POINTS].numpy().astype(np.float64)
    _, nearest = KDTree(source).query(xyz.astype(np.float64), k=1)
    labels = item[POINTS_SEMANTIC].numpy()[nearest.astype(np.int64)]
    labelled = np.flatnonzero(labels >= 0)
    rng = np.random.default_rng(ctx.seed)
    chosen = np.sort(rng.choice(labelled, min(len(labelled), int(config.tsne_points)), replace=False))
    if len(chosen) < 5:
        log.warning("t-SNE skipped: only %d labelled encoded points", len(chosen))
        return None
    d = frozen.shape[1]

    def embed(features: np.ndarray) -> np.ndarray:
        return tsne_embedding(features, config.tsne_perplexity, config.tsne_iterations, ctx.seed)

    np.savez(path, xyz=xyz[chosen], labels=labels[chosen].astype(np.int64), frozen=frozen[chosen],
             contextualised=contextualised[chosen], classes=np.array(ctx.dataset.info.semantic_classes),
             tsne_frozen=embed(frozen[chosen]), tsne_context=embed(contextualised[chosen, d:]),
             tsne_contextualised=embed(contextualised[chosen]))
    return path


# ----- the protocol ---------------------------------------------------------------------------------------------

def check_dataset(ctx: RunContext, needs_semantics: bool, protocol: str) -> None:
    info = ctx.dataset.info
    wanted = ("udf", "semantic") if needs_semantics else ("udf",)
    missing = [target for target in wanted if target not in info.targets]
    if missing:
        raise ValueError(f"protocol {protocol} needs {', '.join(wanted)} targets; dataset {info.name} provides "
                         f"{', '.join(info.targets) or 'none'}")
    if needs_semantics and len(info.semantic_classes) < 2:
        raise ValueError(f"dataset {info.name} declares no semantic vocabulary")


@dataclass
class Row:
    """A trained row: what it evaluates, and its validation metrics."""

    parts: RowParts
    semantics: bool
    validation: list[Metric]


class ContextualiseProtocol:
    def __init__(self, config: ContextualiseConfig) -> None:
        if config.row not in ROWS:
            raise ValueError(f"protocol.row={config.row!r}: expected one of {list(ROWS)}")
        if config.context and config.row != "context":
            raise ValueError(f"protocol.context={dict(config.context)} configures the contextualiser, which only "
                             f"the context row has (protocol.row={config.row})")
        self.config = config

    def train(self, ctx: RunContext) -> Row:
        """Train (or reuse) the row's stages."""
        row = self.config.row
        check_dataset(ctx, row != "geometric", "contextualise")
        produces = ctx.specs["encoder"].capabilities.produces
        if row != "geometric" and produces != "points":
            raise ValueError(f"protocol.row={row} decodes semantics from a points encoding; encoder "
                             f"{ctx.specs['encoder'].name} produces a {produces} encoding, which only the geometric "
                             "row (UDF reconstruction) takes")
        check_splits(ctx.dataset, scene_split_keys(ctx.input_key, row != "geometric",
                                                   row == "context" and self.config.tsne_points > 0), "contextualise")
        stages = SceneStages(ctx, self.config)
        if row == "context":
            stages.head_spec_and_config("context")  # a bad ablation override fails before any training
        if row == "baseline":
            model, best = stages.baseline(ctx.run_dir)
            return Row(RowParts(model.encoder, model.udf, model.semantic), True, [metric("val", "query_miou", best)])
        stage1, udf_l1 = stages.geometric(own_data(ctx), ctx.run_dir / "stage1")
        if row == "geometric":
            return Row(RowParts(stage1.encoder, stage1.udf, stage1=stage1), False, [metric("val", "udf_l1", udf_l1)])
        if row == "unfrozen":
            parts, best = stages.unfrozen(stage1, ctx.run_dir / "stage2")
        else:
            parts, best = stages.on_frozen(stage1, row == "context", ctx.run_dir / "stage2")
        return Row(parts, True, [metric("val", "stage1_udf_l1", udf_l1), metric("val", "query_miou", best)])

    def run(self, ctx: RunContext) -> list[Metric]:
        trained = self.train(ctx)
        metrics = (trained.validation + evaluate_scenes(ctx, self.config, trained.parts.eval(), trained.semantics)
                   + scene_floors(ctx, self.config, trained.semantics))
        parts = [trained.parts.encoder, trained.parts.udf, trained.parts.semantic, trained.parts.context]
        metrics.append(metric("test", "parameters", sum(p.numel() for part in parts if part is not None
                                                        for p in part.parameters())))
        if trained.parts.context is not None:
            metrics.append(metric("test", "context_parameters",
                                  sum(p.numel() for p in trained.parts.context.parameters())))
            save_tsne(ctx, self.config, trained.parts, ctx.run_dir / TSNE_FILE)
        return metrics

