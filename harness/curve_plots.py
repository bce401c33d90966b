"""Training-curve plots beside the leaderboards, so a reader sees whether (and how fast) each method converged.

One panel per (stage, validation metric), each stage followed by its training loss; one line per leaderboard row
(the mean over its seeds, computed exactly so the row order of the store does not matter). The PNG is
deterministic: fixed size and resolution, no timestamp or software metadata, and no global matplotlib state
(a figure with its own Agg canvas).
"""
from __future__ import annotations

import io
import math
import statistics

import pandas as pd

PANEL_SIZE = (5.0, 3.2)  # inches, width and height
LEGEND_LINE = 0.16  # inches per legend entry
LINE_STYLES = ("-", "--", ":", "-.")  # after the 10 colours of the cycle

Lines = dict[str, tuple[list[int], list[float]]]  # line label -> (steps, values)


def curve_panels(points: pd.DataFrame) -> list[tuple[str, Lines, bool]]:
    """(title, lines, is_loss) per panel of ``Store.curves`` rows with a ``line`` column (the label each run's
    points are drawn under): per stage, its validation metrics, then its training loss."""
    panels = []
    for stage in sorted(points["stage"].unique()):
        prefix = f"{stage}: " if stage else ""
        rows = points[points["stage"] == stage]
        validation = rows[rows["metric"].notna() & rows["value"].notna()]
        for metric in sorted(validation["metric"].unique()):
            panels.append((f"{prefix}validation {metric}",
                           _mean_per_step(validation[validation["metric"] == metric], "value"), False))
        losses = rows[rows["loss"].notna()]
        if not losses.empty:
            panels.append((f"{prefix}training loss", _mean_per_step(losses, "loss"), True))
    return panels


def _mean_per_step(rows: pd.DataFrame, column: str) -> Lines:
    """Each line's mean over its runs at every step (exact, so independent of row order)."""
    means = rows.groupby(["line", "step"])[column].agg(lambda values: statistics.mean(float(v) for v in values))
    return {line: (list(series.index.get_level_values("step")), list(series))
            for line, series in means.groupby(level="line")}


def _spans_decades(values: list[float]) -> bool:
    """Whether positive values spread over more than a factor of 10: a loss falling that far reads on a log
    scale."""
    return min(values) > 0 and max(values) > 10 * min(values)


def plot_curves(points: pd.DataFrame) -> bytes | None:
    """The panels of :func:`curve_panels` as PNG bytes, one legend below them; None without any point."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    panels = curve_panels(points)
    if not panels:
        return None
    lines = sorted(points["line"].unique())
    styles = {line: {"color": f"C{index % 10}", "linestyle": LINE_STYLES[index // 10 % len(LINE_STYLES)]}
              for index, line in enumerate(lines)}
    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    legend_height = 0.3 + LEGEND_LINE * len(lines)
    height = rows * PANEL_SIZE[1] + legend_height
    figure = Figure(figsize=(columns * PANEL_SIZE[0], height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (title, drawn, is_loss) in zip(axes, panels):
        for line, (steps, values) in sorted(drawn.items()):
            ax.plot(steps, values, lw=1.2, marker="o" if len(steps) <= 12 else None, ms=3, **styles[line])
        if is_loss and _spans_decades([value for _, values in drawn.values() for value in values]):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(which="both", labelsize=7)
        ax.grid(True, lw=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    handles = [Line2D([], [], lw=1.2, **styles[line]) for line in lines]
    labels = [line if len(line) <= 110 else line[:107] + "..." for line in lines]
    figure.legend(handles, labels, loc="lower center", fontsize=7, frameon=False)
    figure.tight_layout(rect=(0, legend_height / height, 1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
