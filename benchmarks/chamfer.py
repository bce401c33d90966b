"""Chamfer-L1/L2 + F-score for 100k vs 100k points: surface_metrics vs two plain pykdtree NN queries.

The baseline is the least any implementation must do: build a tree on each set and query the other
set against it (pykdtree defaults, same float32 inputs). scipy's cKDTree (workers=-1) is timed too, as
the alternative backend. Target: surface_metrics no slower than the baseline. Runs are interleaved and
both the median and the minimum are reported (with the load average), because other processes may share
the machine's cores.
Prints a table, writes benchmarks/results/chamfer.json.

Run: .venv/bin/python benchmarks/chamfer.py
"""
from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np
import trimesh
from pykdtree.kdtree import KDTree
from scipy.spatial import cKDTree

from results_file import save

from harness.geometry.mesh import sample_surface
from harness.metrics.reconstruction import surface_metrics

N_POINTS = 100_000
REPEATS = 21


def main() -> None:
    rng = np.random.default_rng(0)
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.4)
    noisy = np.asarray(sphere.vertices) * (1.0 + 0.005 * rng.standard_normal((len(sphere.vertices), 1)))
    gt, gt_n, _ = sample_surface(sphere.vertices, sphere.faces, N_POINTS, rng)
    pred, pred_n, _ = sample_surface(noisy, sphere.faces, N_POINTS, rng)

    def two_pykdtree() -> None:
        KDTree(gt).query(pred, k=1)
        KDTree(pred).query(gt, k=1)

    def two_ckdtree() -> None:
        cKDTree(gt).query(pred, k=1, workers=-1)
        cKDTree(pred).query(gt, k=1, workers=-1)

    candidates: dict[str, Callable[[], object]] = {
        "baseline_two_pykdtree_queries": two_pykdtree,
        "baseline_two_ckdtree_queries": two_ckdtree,
        "surface_metrics_chamfer_fscore": lambda: surface_metrics(pred, None, gt, None, (0.01,)),
        "surface_metrics_with_normals": lambda: surface_metrics(pred, pred_n, gt, gt_n, (0.01,)),
    }
    for fn in candidates.values():  # warm-up
        fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(REPEATS):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    median = {name: float(np.median(ts)) for name, ts in samples.items()}
    best = {name: float(np.min(ts)) for name, ts in samples.items()}
    base = "baseline_two_pykdtree_queries"
    ours = "surface_metrics_chamfer_fscore"
    results = {
        "n_pred": N_POINTS,
        "n_gt": N_POINTS,
        "dtype": "float32",
        "repeats": REPEATS,
        "load_average_1min": os.getloadavg()[0],
        "median_time_s": median,
        "min_time_s": best,
        "median_ratio_vs_two_pykdtree": {name: t / median[base] for name, t in median.items()},
        "metrics": surface_metrics(pred, pred_n, gt, gt_n, (0.01,)),
    }
    results["target_met"] = {"median": median[ours] <= median[base], "min": best[ours] <= best[base]}

    print(f"{N_POINTS} vs {N_POINTS} points, {REPEATS} interleaved runs, load average {results['load_average_1min']:.2f}")
    print(f"{'method':<36}{'median [ms]':>12}{'min [ms]':>12}{'x baseline':>12}")
    for name in candidates:
        print(f"{name:<36}{1000 * median[name]:>12.2f}{1000 * best[name]:>12.2f}{median[name] / median[base]:>12.3f}")
    print("metrics:", {k: round(v, 6) for k, v in results["metrics"].items()})
    print("target met (surface_metrics <= two plain pykdtree queries):", results["target_met"])

    print(f"wrote {save('chamfer', results)}")


if __name__ == "__main__":
    main()
