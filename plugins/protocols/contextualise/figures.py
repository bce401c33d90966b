"""The contextualise leaderboard's figure: t-SNE embeddings of frozen vs contextualised features (the paper's
Fig. 2), rendered from the embeddings the context rows saved in their run folders (``tsne.npz``), so
regenerating the leaderboard from the same store and run folders gives the same PNG byte for byte."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from . import TSNE_FILE

PANELS = (("tsne_frozen", "frozen features $E_g$"), ("tsne_context", "context features $E_c$"),
          ("tsne_contextualised", "$E_g \\oplus E_c$"))
MAX_ROWS = 6  # methods shown (one row of panels each)
LEGEND_INCHES = 0.5  # below the panels


def _saved(frame: pd.DataFrame) -> list[tuple[str, str, Path]]:
    """(method, profile, tsne file) per (method, profile) with a saved embedding: its lowest seed's run."""
    if "run_dir" not in frame.columns:
        return []
    runs = frame.drop_duplicates("run_id")[["run_id", "method", "profile", "seed", "run_dir"]]
    runs = runs[runs["run_dir"].notna()].sort_values(["method", "profile", "seed", "run_id"], kind="stable")
    chosen = []
    for (method, profile), group in runs.groupby(["method", "profile"], sort=True):
        for run_dir in group["run_dir"]:
            path = Path(run_dir) / TSNE_FILE
            if path.is_file():
                chosen.append((str(method), str(profile), path))
                break
    return chosen[:MAX_ROWS]


def tsne_figures(dataset: str, frame: pd.DataFrame) -> dict[str, tuple[str, bytes]]:
    """{``contextualise_<dataset>_tsne.png``: (caption, PNG)} when a current run saved embeddings, else {}."""
    saved = _saved(frame)
    if not saved:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    arrays = [dict(np.load(path, allow_pickle=False)) for _, _, path in saved]
    classes = [str(c) for c in arrays[0]["classes"]]
    palette = plt.get_cmap("tab20", max(20, len(classes)))
    height = 3.6 * len(saved) + LEGEND_INCHES
    figure, axes = plt.subplots(len(saved), len(PANELS), figsize=(4.0 * len(PANELS), height), dpi=100, squeeze=False)
    present: set[int] = set()
    for row, ((method, profile, _), data) in enumerate(zip(saved, arrays)):
        labels = data["labels"].astype(int)
        present.update(int(label) for label in np.unique(labels))
        for column, (key, title) in enumerate(PANELS):
            ax = axes[row][column]
            points = data[key]
            ax.scatter(points[:, 0], points[:, 1], c=[palette(label) for label in labels], s=4, linewidths=0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title if row == 0 else "", fontsize=9)
            if column == 0:
                ax.set_ylabel(f"{method}\n({profile})" if len(method) <= 40 else f"...{method[-37:]}\n({profile})",
                              fontsize=7)
    handles = [plt.Line2D([], [], marker="o", ls="", color=palette(c), ms=5,
                          label=classes[c] if c < len(classes) else str(c)) for c in sorted(present)]
    figure.legend(handles=handles, loc="lower center", ncol=min(7, len(handles)), fontsize=7, frameon=False)
    figure.tight_layout(rect=(0, LEGEND_INCHES / height, 1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    caption = ("t-SNE of frozen vs contextualised features (encoded points of the first test scene, coloured by "
               "semantic class)")
    return {f"contextualise_{dataset}_tsne.png": (caption, buffer.getvalue())}
