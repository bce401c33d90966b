"""Pareto plots of model size against quality, beside the compression and quantisation leaderboards.

A point is a leaderboard row (a method, or one configuration of it where the protocol breaks its runs down,
e.g. per bit configuration), plus each method's uncompressed baseline where the run recorded one
(``baseline_<metric>``, and ``control_<metric>``: the baseline fine-tuned like the compressed model). The front joins the points no other point beats on both axes (smaller and better).
The PNG is deterministic: fixed size and resolution, no timestamp or software metadata.
"""
from __future__ import annotations

import io
import statistics
from dataclasses import dataclass

import pandas as pd

from harness.specs import ParetoAxes

BASELINE = "baseline_"
CONTROL = "control_"  # the uncompressed model after the compressed one's fine-tuning schedule


@dataclass(frozen=True)
class ParetoPoints:
    size: str
    quality: str
    points: tuple[tuple[str, float, float], ...]  # (label, size, quality), sorted

    def front(self) -> list[tuple[str, float, float]]:
        """The non-dominated points, by increasing size (quality strictly increasing along the front)."""
        best, front = -float("inf"), []
        for label, size, quality in sorted(self.points, key=lambda p: (p[1], -p[2], p[0])):
            if quality > best:
                best = quality
                front.append((label, size, quality))
        return front


def pareto_points(frame: pd.DataFrame, axes: ParetoAxes) -> ParetoPoints | None:
    """The points of one dataset's metrics (``Store.metrics`` rows of one split); None without both axes."""
    names = set(frame["name"])
    quality = next((name for name in axes.quality if name in names), None)
    if quality is None or axes.size not in names:
        return None
    broken_down = frame[frame["class_name"].notna()]
    rows = broken_down if axes.size in set(broken_down["name"]) else frame[frame["class_name"].isna()]
    keys = ["method", "variant"] + (["class_name"] if rows is broken_down else [])
    one_method = rows["method"].nunique() == 1
    points = set()
    for key, group in rows.groupby(keys, dropna=False):
        values = group.groupby("name")["value"].agg(lambda v: statistics.mean(float(x) for x in v))
        parts = (*key[2:],) if one_method and len(key) > 2 else (key[0], *key[2:])
        label = " / ".join(str(part) for part in parts)
        if axes.size in values and quality in values:
            points.add((label, float(values[axes.size]), float(values[quality])))
        if BASELINE + axes.size in values:
            encoder = key[0].split(" + ")[0]
            for stage, label in ((BASELINE, "uncompressed"), (CONTROL, "uncompressed, fine-tuned alike")):
                if stage + quality in values:
                    points.add((f"{encoder} {label}", float(values[BASELINE + axes.size]),
                                float(values[stage + quality])))
    return ParetoPoints(axes.size, quality, tuple(sorted(points)))


def plot_pareto(points: ParetoPoints) -> bytes:
    """The plot as PNG bytes: every point labelled, the front drawn through its points."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, ax = plt.subplots(figsize=(8, 5), dpi=100)
    ax.scatter([p[1] for p in points.points], [p[2] for p in points.points], color="0.55", s=18, zorder=2)
    front = points.front()
    ax.plot([p[1] for p in front], [p[2] for p in front], color="tab:red", marker="o", ms=5, lw=1.2, zorder=3,
            label="Pareto front")
    for label, size, quality in points.points:
        ax.annotate(label if len(label) <= 48 else "..." + label[-45:], (size, quality), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"{points.size} (lower is better)")
    ax.set_ylabel(f"{points.quality} (higher is better)")
    ax.grid(True, lw=0.3)
    ax.margins(x=0.15, y=0.12)  # room for the labels of the outermost points
    ax.legend(loc="best", fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
