"""The ``kinetics`` dataset: Kinetics-style annotation CSVs plus one folder of decoded frames per clip.

Annotations: CSV files with a header holding at least the official Kinetics-400 columns
``label,youtube_id,time_start,time_end,split`` (other columns are ignored); a missing column or a bad row (too few
fields, an empty label or id, a time that is not a whole number, an unknown split) raises a
:class:`~harness.datacache.DataFileError` naming the file and line. Classes are the sorted labels of all rows.

Frames: the clip of a row lives in ``<root>/<frames_dir>/<split>/<youtube_id>_<time_start:06d>_<time_end:06d>/``,
optionally with a ``<label>/`` level (spaces in the label may be underscores) between the split and the clip;
``<split>`` is the CSV's split value or a usual spelling of it (``val``, ``validate``, ...). Its frames are its
``*.jpg``/``*.jpeg``/``*.png`` files in name order (``img_00001.jpg``, ...). Rows whose folder is missing are
skipped, with their count in a logged warning.

Splits: ``train`` and ``val`` are carved per class from the CSV's train rows (``val_fraction``); ``test`` is the
CSV split named by ``test_split`` (``val`` by default: Kinetics-400's validation set, which papers report on).
Items: ``video`` ``[3, T, H, W]`` float32 in [0, 1] (``T = clip_length`` frames at the centres of T equal
segments of the clip, a random position within each segment in training; each frame resized to
``frame_size`` x ``frame_size``, bilinear, with Pillow), ``label``, ``index``.
"""
from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np

from harness import data as keys
from harness.data import DatasetInfo, check_split
from harness.datacache import DataFileError, SeededSplit, check_index, file_stats, fingerprint, plain_copy, require_root

from ..arrays import carve_by_class
from .config import LAYOUT, LOADER_VERSION, SPLIT_NAMES, KineticsConfig

NAME = "kinetics"
COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
log = logging.getLogger(__name__)

Row = tuple[str, str, str]  # (label, clip id, split)
Clip = tuple[Path, int]  # (frame folder, label)


def clip_id(youtube_id: str, start: int, end: int) -> str:
    return f"{youtube_id}_{start:06d}_{end:06d}"


def _whole_number(text: str, path: Path, line: int, column: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise DataFileError(path, f"{column} {text!r} is not a number", line) from None
    if not value.is_integer() or value < 0:
        raise DataFileError(path, f"{column} {text!r} is not a whole number of seconds >= 0", line)
    return int(value)


def read_annotations(path: Path) -> list[Row]:
    """The rows of one annotation CSV as (label, clip id, split); a malformed file raises DataFileError."""
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            if header is None:
                raise DataFileError(path, f"empty file (expected a header with {list(COLUMNS)})", 1)
            header = [name.strip() for name in header]
            missing = [name for name in COLUMNS if name not in header]
            if missing:
                raise DataFileError(path, f"missing column(s) {missing}; the header has {header}", 1)
            where = {name: header.index(name) for name in COLUMNS}
            rows = []
            for fields in reader:
                line = reader.line_num
                if not any(field.strip() for field in fields):
                    continue
                if len(fields) < len(header):
                    raise DataFileError(path, f"{len(fields)} fields, expected {len(header)} ({', '.join(header)})", line)
                value = {name: fields[where[name]].strip() for name in COLUMNS}
                for name in ("label", "youtube_id"):
                    if not value[name]:
                        raise DataFileError(path, f"empty {name}", line)
                split = SPLIT_NAMES.get(value["split"].lower())
                if split is None:
                    raise DataFileError(path, f"unknown split {value['split']!r} (expected one of "
                                              f"{sorted(set(SPLIT_NAMES))})", line)
                start = _whole_number(value["time_start"], path, line, "time_start")
                end = _whole_number(value["time_end"], path, line, "time_end")
                rows.append((value["label"], clip_id(value["youtube_id"], start, end), split))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(path, f"unreadable CSV ({type(exc).__name__}: {exc})") from exc
    return rows


def annotation_files(root: Path, config: KineticsConfig) -> list[Path]:
    if config.annotations:
        paths = [root / name for name in config.annotations]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{NAME}: annotation files {missing} do not exist")
        return paths
    paths = sorted(root.glob("*.csv")) + sorted((root / "annotations").glob("*.csv"))
    if not paths:
        raise FileNotFoundError(f"{NAME}: no annotation CSV in {root} or {root / 'annotations'} "
                                f"(expected layout: {LAYOUT})")
    return paths


def clip_folders(frames: Path, split: str, labels: set[str]) -> dict[str, Path]:
    """clip id -> frame folder of every clip under ``frames``' folders for ``split`` (any spelling), directly or
    under a label folder."""
    found: dict[str, Path] = {}
    spellings = sorted(name for name, value in SPLIT_NAMES.items() if value == split)
    label_names = labels | {label.replace(" ", "_") for label in labels}
    for spelling in spellings:
        folder = frames / spelling
        if not folder.is_dir():
            continue
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not entry.is_dir():
                continue
            if entry.name in label_names:
                for clip in sorted(os.scandir(entry.path), key=lambda e: e.name):
                    if clip.is_dir():
                        found.setdefault(clip.name, Path(clip.path))
            else:
                found.setdefault(entry.name, Path(entry.path))
    return found


def frame_files(folder: Path) -> list[Path]:
    """The frames of a clip folder in name order."""
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.is_file())
    if not frames:
        raise DataFileError(folder, f"no frames ({', '.join('*' + s for s in FRAME_SUFFIXES)})")
    return frames


def sample_positions(count: int, length: int, rng: np.random.Generator | None) -> np.ndarray:
    """``length`` frame indices of a clip of ``count`` frames: one per equal segment, at its centre (``rng``
    None) or at a random position within it."""
    offsets = np.full(length, 0.5) if rng is None else rng.random(length)
    return np.minimum(((np.arange(length) + offsets) * count / length).astype(np.int64), count - 1)


def load_frame(path: Path, size: int) -> np.ndarray:
    """``uint8 [size, size, 3]`` RGB frame, resized bilinearly."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataFileError(path, f"unreadable image ({type(exc).__name__}: {exc})") from exc


class ClipSplit(SeededSplit):
    """One split of clips; each item decodes ``clip_length`` frames of one folder."""

    def __init__(self, split: str, clips: list[Clip], config: KineticsConfig) -> None:
        super().__init__(NAME, split, len(clips), config.seed)
        self.clips, self.config = clips, config

    def draw(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        folder, label = self.clips[index]
        frames = frame_files(folder)
        chosen = sample_positions(len(frames), self.config.clip_length, rng if self.train else None)
        video = np.stack([load_frame(frames[i], self.config.frame_size) for i in chosen])  # [T, H, W, 3]
        video = video.transpose(3, 0, 1, 2).astype(np.float32) / np.float32(255)
        return {keys.VIDEO: video, keys.LABEL: np.int64(label)}


class Kinetics:
    """A built Kinetics dataset: each split's (frame folder, label) clips."""

    def __init__(self, config: KineticsConfig, info: DatasetInfo, clips: dict[str, list[Clip]]) -> None:
        self.config, self.info, self.clips = config, info, clips

    def split(self, name: str) -> ClipSplit:
        check_split(self.info, name)
        return ClipSplit(name, self.clips[name], self.config)

    def mesh_path(self, split: str, index: int) -> None:
        """Clips only: no mesh."""
        check_index(self.info, self.clips, split, index)


def build(config: KineticsConfig, cache_dir: str | Path) -> Kinetics:
    """Validate ``config``, read the annotations, find each clip's frame folder and carve the splits."""
    del cache_dir  # nothing is derived: frames are decoded per item
    config = plain_copy(config, KineticsConfig)
    config.validate()
    root = require_root(NAME, config.root, LAYOUT)
    csv_files = annotation_files(root, config)
    rows = [row for path in csv_files for row in read_annotations(path)]
    classes = sorted({label for label, _, _ in rows})
    if not classes:
        raise FileNotFoundError(f"{NAME}: the annotation files {[str(p) for p in csv_files]} have no rows")
    frames = root / config.frames_dir
    if not frames.is_dir():
        raise FileNotFoundError(f"{NAME}: no frame folder {frames} (expected layout: {LAYOUT})")
    test_split = SPLIT_NAMES[config.test_split]
    wanted = {"train": "train", test_split: "test"}  # CSV split -> harness split
    found: dict[str, list[Clip]] = {"train": [], "test": []}
    skipped, example = 0, ""
    for csv_split, split in wanted.items():
        folders = clip_folders(frames, csv_split, set(classes))
        for label, clip, row_split in rows:
            if row_split != csv_split:
                continue
            if clip in folders:
                found[split].append((folders[clip], classes.index(label)))
            else:
                skipped += 1
                example = example or f"{csv_split}/{clip}"
    if skipped:
        log.warning("%s: %d annotated clips have no frame folder under %s (e.g. %s); skipped", NAME, skipped,
                    frames, example)
    for split, clips in found.items():
        if not clips:
            raise FileNotFoundError(f"{NAME}: no {split} clip (CSV split "
                                    f"{'train' if split == 'train' else test_split}) has a frame folder under {frames} "
                                    f"(expected layout: {LAYOUT})")
    train = found["train"]
    labels = np.asarray([label for _, label in train])
    parts = carve_by_class(labels, {"train": 1 - config.val_fraction, "val": config.val_fraction}, config.seed)
    clips = {split: [train[i] for i in parts[split]] for split in ("train", "val")}
    clips["test"] = found["test"]
    if config.max_per_class:
        clips = {split: _first_per_class(items, config.max_per_class) for split, items in clips.items()}
    identity = fingerprint({"dataset": NAME, "loader_version": LOADER_VERSION, "config": config.params(),
                            "classes": classes,
                            "splits": {split: [_relative(folder, root) for folder, _ in items]
                                       for split, items in clips.items()},
                            "files": _stats(root, csv_files + [f for items in clips.values() for f, _ in items])})
    shape = (3, config.clip_length, config.frame_size, config.frame_size)
    info = DatasetInfo(name=NAME, modalities=(keys.VIDEO,), targets=(keys.LABEL,), classes=tuple(classes),
                       splits=keys.SPLITS, fingerprint=identity, input_shapes={keys.VIDEO: shape})
    return Kinetics(config, info, clips)


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` where it lies inside (annotations and frames may be elsewhere)."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def _stats(root: Path, paths: list[Path]) -> list[list]:
    """:func:`harness.datacache.file_stats` rows (path, size, mtime), also for paths outside ``root``: a changed
    annotation file or an edited frame folder (its mtime changes when frames are added or removed) changes the
    fingerprint."""
    inside = [p for p in paths if p.is_relative_to(root)]
    rows = file_stats(root, inside)
    rows += [[p.as_posix(), p.stat().st_size, p.stat().st_mtime_ns] for p in paths if not p.is_relative_to(root)]
    return sorted(rows)


def _first_per_class(clips: list[Clip], limit: int) -> list[Clip]:
    kept, counts = [], {}
    for folder, label in clips:
        if counts.get(label, 0) < limit:
            kept.append((folder, label))
            counts[label] = counts.get(label, 0) + 1
    return kept
