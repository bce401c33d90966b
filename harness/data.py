"""The one place that fixes sample key names and what a dataset declares about itself.

A dataset split yields dicts of tensors (one shape each; the DataLoader adds the batch axis):

========================  ============  =====================================================
key                       shape/dtype   meaning
========================  ============  =====================================================
``points``                [N,3] f32     encoder input point cloud (noisy surface samples)
``points_part``           [N] i64       part label of each input point (the conventional per-point task)
``image``                 [C,H,W] f32   encoder input image, values in [0, 1] (C = 3, or 1 for grey datasets)
``voxels``                [1,R,R,R] f32 encoder input occupancy grid
``video``                 [3,T,H,W] f32 encoder input clip
``query``                 [M,3] f32     query points for implicit targets
``occupancy``             [M] f32       1 inside, 0 outside (for ``query``)
``udf``                   [M] f32       unsigned distance (for ``query``)
``part``                  [M] i64       part label of ``query`` (-1 = ignore)
``semantic``              [M] i64       semantic label of ``query`` (-1 = ignore)
``label``                 [] i64        class label of the whole sample
``surface``               [S,3] f32     evaluation only: ground-truth surface points
``normals``               [S,3] f32     evaluation only: their unit normals
``surface_part``          [S] i64       evaluation only: their part labels
``surface_semantic``      [S] i64       evaluation only: their semantic labels (-1 = unlabelled)
``points_semantic``       [N] i64       semantic label of each input point (-1 = unlabelled)
``index``                 [] i64        the sample's index within its split
========================  ============  =====================================================

The mesh of a sample (evaluation only, a path string) is available from ``Dataset.mesh_path``,
not from the sample dict, so batches stay tensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field

POINTS = "points"
POINTS_PART = "points_part"
IMAGE = "image"
VOXELS = "voxels"
VIDEO = "video"
QUERY = "query"
OCCUPANCY = "occupancy"
UDF = "udf"
PART = "part"
SEMANTIC = "semantic"
LABEL = "label"
IOU_QUERY = "iou_query"
IOU_OCCUPANCY = "iou_occupancy"
SURFACE = "surface"
NORMALS = "normals"
SURFACE_PART = "surface_part"
SURFACE_SEMANTIC = "surface_semantic"
POINTS_SEMANTIC = "points_semantic"
INDEX = "index"

IGNORE_INDEX = -1
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What a built dataset declares: decoders size their outputs from it, the store records its fingerprint."""

    name: str
    modalities: tuple[str, ...]
    targets: tuple[str, ...]
    classes: tuple[str, ...]
    parts: tuple[str, ...] = ()  # global part vocabulary (index = part label)
    parts_per_class: dict[str, tuple[int, ...]] = field(default_factory=dict)  # class -> its part ids
    semantic_classes: tuple[str, ...] = ()  # per-point semantic vocabulary of scenes (index = semantic label)
    splits: tuple[str, ...] = SPLITS
    fingerprint: str = ""
    # modality -> the shape of one sample's input, e.g. {"image": (1, 28, 28)}: encoders size their stems from it
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def check_split(info: DatasetInfo, name: str) -> None:
    """A clear error for an unknown split name."""
    if name not in info.splits:
        raise KeyError(f"dataset {info.name!r} has no split {name!r}; splits are {list(info.splits)}")

