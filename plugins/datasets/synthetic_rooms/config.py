"""Configuration of the synthetic rooms (no heavy imports: the registry reads it without torch).

Defaults are paper-sized: ScanNet's split sizes (1201 train / 312 val / 100 test scans) and the contextualising
paper's preparation (see :class:`~harness_plugins.datasets.scenes.SceneSampling`); the virtual depth camera is
Kinect-like (58 degree horizontal field of view, 4 m range, the axial noise model of Nguyen et al. 2012).
``PROFILES`` shrink everything for CI and quick local runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.config_checks import is_number
from harness.datacache import check_fields

from ..scenes import SceneSampling

GENERATOR_VERSION = "1"  # bump whenever generated content changes: it is part of the cache fingerprint

ROOM_TYPES: tuple[str, ...] = ("bedroom", "living_room", "office", "kitchen", "bathroom")

# Fields that change the generated files (with SceneSampling.sampling_params), hence the cache fingerprint
GENERATION_FIELDS = ("seed", "train_rooms", "val_rooms", "test_rooms", "room_types", "ceiling_probability",
                     "scan_views", "scan_width", "scan_height", "scan_fov", "scan_max_range", "scan_noise")


@dataclass
class SyntheticRoomsConfig(SceneSampling):
    seed: int = 0
    train_rooms: int = 1201
    val_rooms: int = 312
    test_rooms: int = 100
    # room i of a split has type room_types[i mod len(room_types)]
    room_types: list[str] = field(default_factory=lambda: list(ROOM_TYPES))
    ceiling_probability: float = 0.5  # real reconstructions often miss the ceiling; it is labelled -1 (ignore)
    # the virtual scan: scan_views depth images of scan_width x scan_height pixels from poses inside the room
    scan_views: int = 16
    scan_width: int = 160
    scan_height: int = 120
    scan_fov: float = 58.0  # horizontal field of view, degrees
    scan_max_range: float = 4.0  # metres; farther surfaces are not measured
    # multiplier of the axial depth noise sigma(z) = 0.0012 + 0.0019 (z - 0.4)^2 metres (Kinect, Nguyen et al.)
    scan_noise: float = 1.0

    def generation_params(self) -> dict[str, Any]:
        params = {name: getattr(self, name) for name in GENERATION_FIELDS}
        params["room_types"] = list(params["room_types"])
        return {**params, **self.sampling_params()}

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        name = "synthetic_rooms"
        unknown = [t for t in self.room_types if t not in ROOM_TYPES]
        if not self.room_types or unknown or len(set(self.room_types)) != len(self.room_types):
            raise ValueError(f"{name}: room_types must be unique names of {list(ROOM_TYPES)}, got "
                             f"{list(self.room_types)}")
        check_fields(name, self, counts=("scan_views", "scan_width", "scan_height"),
                     non_negative=("seed", "train_rooms", "val_rooms", "test_rooms", "scan_noise"))
        for field_name in ("seed", "train_rooms", "val_rooms", "test_rooms"):
            if not isinstance(getattr(self, field_name), int):
                raise ValueError(f"{name}: {field_name} must be an integer >= 0, got {getattr(self, field_name)!r}")
        if not self.train_rooms + self.val_rooms + self.test_rooms:
            raise ValueError(f"{name}: train_rooms, val_rooms and test_rooms are all 0")
        if not (is_number(self.ceiling_probability) and 0 <= self.ceiling_probability <= 1):
            raise ValueError(f"{name}: ceiling_probability must be a number in [0, 1], got "
                             f"{self.ceiling_probability!r}")
        if not (is_number(self.scan_fov) and 0 < self.scan_fov < 180):
            raise ValueError(f"{name}: scan_fov must be a number of degrees in (0, 180), got {self.scan_fov!r}")
        if not (is_number(self.scan_max_range) and self.scan_max_range > 0.5):
            raise ValueError(f"{name}: scan_max_range must be a number of metres > 0.5, got {self.scan_max_range!r}")
        self.check_sampling(name)


# smoke: five tiny rooms (one of each type) in seconds; quick: 62 rooms (10 to test) that generate in about half a
# minute on 2 cores. Their ground-truth surfaces keep the paper's 100k points: F1-delta compares point samples, and
# with fewer the samples themselves lie further apart than delta (an exact UDF extracted at 48^3 scores F1-delta
# 0.18-0.39 against 10k ground-truth points, 0.56-0.83 against 100k)
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "train_rooms": 3, "val_rooms": 1, "test_rooms": 1,
        # n_input: the bench's scene variants draw 2048 input points per room, in smoke too
        "n_input": 2048, "n_queries": 4096, "n_surface": 4096,
        "input_points": 512, "query_points": 1024, "eval_surface_points": 2048,
        "scan_views": 6, "scan_width": 48, "scan_height": 36,
    },
    "quick": {
        "train_rooms": 48, "val_rooms": 4, "test_rooms": 10,
        "n_input": 4096, "n_queries": 20_000, "n_surface": 100_000,
        "input_points": 4096, "query_points": 4096, "eval_surface_points": 100_000,
        "scan_views": 12, "scan_width": 96, "scan_height": 72,
    },
}
