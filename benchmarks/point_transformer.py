"""Point Transformer at paper sizes (10k input points, batch 1): forward + backward time and peak memory with
the default kNN of CPU tensors (harness.pointops: a KD-tree, ``tree``), with the chunked torch search (what runs
on other devices, ``knn_tree=False``; spatially pruned in the searches of at least 2^24 query-point pairs,
where that pays, see ``KnnSettings`` in the model), and with a dense all-pairs kNN (``dense_knn=True``: every
kNN builds its full distance matrix, 10k x 10k at the first stage, with one matmul and a top-k); the kNN alone
at 10k points in the three versions; FPS and kNN throughput at 10k-100k points.

All variants run the same network code (the attention restructured so that no [N, k, C] tensor is formed or
kept for backward, see ``plugins/encoders/point_transformer/model.py``); only the kNN differs. Each step's time
is split into the kNN, FPS (the same in both) and the rest (attention, MLPs, batch norms, interpolation), so
the printout can say what speed-up a free kNN would allow at most: (rest + FPS + dense kNN) / (rest + FPS).

Memory: each measurement runs in a fresh subprocess (so one variant's high-water mark cannot hide the
other's) and reports the rise of the process's peak resident set size (``ru_maxrss``) over its resident
size just before the first forward (torch, the model and the input already loaded). tracemalloc does not
see torch's CPU allocations, and torch's profiler reports per-operator allocations rather than a peak;
ru_maxrss is the real high-water mark of the process, allocator slack included. Variants are interleaved
and repeated; times are medians of the timed steps of all repeats.

The clouds are surface samples of a synthetic room (floor and four walls of a box plus three spheres and a
table-like slab, normalised to the unit cube), as a scan would give: the kNN's spatial pruning depends on
the distribution, and scenes are what this encoder is benchmarked on.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/point_transformer.py   (add --quick for fewer repeats)
Prints a table, writes benchmarks/results/point_transformer.json (point_transformer_<n>_threads.json when torch
runs n > 1 threads, e.g. OMP_NUM_THREADS=2).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

N_POINTS = 10_000


def room_cloud(n: int, seed: int = 0):
    """[1, n, 3] points on the surfaces of a synthetic room in [-0.5, 0.5]^3 (float32)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    parts = []
    # floor (z=0) and 4 walls of a 1 x 0.8 x 0.5 box, by area
    size = torch.tensor([1.0, 0.8, 0.5])
    faces = [(2, 0.0), (0, 0.0), (0, 1.0), (1, 0.0), (1, 1.0)]  # (fixed axis, value as a fraction of size)
    areas = []
    for axis, _ in faces:
        others = [i for i in range(3) if i != axis]
        areas.append(float(size[others[0]] * size[others[1]]))
    spheres = [((0.3, 0.25, 0.1), 0.1), ((0.7, 0.5, 0.12), 0.12), ((0.2, 0.6, 0.08), 0.08)]
    sphere_areas = [4 * 3.14159 * r * r for _, r in spheres]
    slab = ((0.45, 0.2, 0.25), (0.3, 0.2, 0.02))  # a table top: centre, size
    slab_area = 2 * slab[1][0] * slab[1][1]
    weights = torch.tensor(areas + sphere_areas + [slab_area])
    counts = torch.multinomial(weights, n, replacement=True, generator=gen).bincount(minlength=9).tolist()
    for (axis, frac), count in zip(faces, counts[:5]):
        p = torch.rand(count, 3, generator=gen) * size
        p[:, axis] = frac * size[axis]
        parts.append(p)
    for (centre, radius), count in zip(spheres, counts[5:8]):
        d = torch.randn(count, 3, generator=gen)
        parts.append(torch.tensor(centre) + radius * d / d.norm(dim=1, keepdim=True))
    top = torch.rand(counts[8], 3, generator=gen) * torch.tensor(slab[1]) - torch.tensor(slab[1]) / 2
    top[:, 2] = torch.where(torch.rand(counts[8], generator=gen) < 0.5, 0.01, -0.01)
    parts.append(top + torch.tensor(slab[0]))
    cloud = torch.cat(parts)[torch.randperm(n, generator=gen)]
    cloud = cloud + 0.002 * torch.randn(n, 3, generator=gen)  # sensor noise
    lo, hi = cloud.amin(0), cloud.amax(0)
    cloud = (cloud - (lo + hi) / 2) / (hi - lo).max()
    return cloud.unsqueeze(0).contiguous()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(variant: str, steps: int) -> dict:
    """One measurement in this (fresh) process."""
    import torch

    from harness import pointops
    from harness_plugins.encoders.point_transformer.model import PointTransformerUNet

    torch.manual_seed(0)
    points = room_cloud(N_POINTS)
    times = []
    if variant.startswith("network_"):
        net = PointTransformerUNet(dense_knn=variant == "network_dense", knn_tree=variant == "network_tree")
        target = torch.randn(1, N_POINTS, net.encoding.dim)
        # time spent in kNN and FPS (the network calls them through the module, so wrapping them here counts
        # every call, the interpolation's included)
        spent = {"knn": 0.0, "fps": 0.0}

        def timed(fn, key: str):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    spent[key] += time.perf_counter() - start
            return wrapper

        pointops.knn_indices = timed(pointops.knn_indices, "knn")
        pointops.farthest_point_sampling = timed(pointops.farthest_point_sampling, "fps")
        before = rss_mb()
        knn_s, fps_s = [], []
        for _ in range(steps + 1):  # the first step is a warm-up (its memory counts, its time does not)
            spent.update(knn=0.0, fps=0.0)
            start = time.perf_counter()
            _, features = net(points)
            loss = (features - target).square().mean()
            net.zero_grad(set_to_none=False)
            loss.backward()
            times.append(time.perf_counter() - start)
            knn_s.append(spent["knn"])
            fps_s.append(spent["fps"])
        return {"times_s": times[1:], "knn_s": knn_s[1:], "fps_s": fps_s[1:],
                "knn_fps_s": [a + b for a, b in zip(knn_s[1:], fps_s[1:])], "peak_rise_mb": peak_mb() - before,
                "rss_before_mb": before, "parameters": sum(p.numel() for p in net.parameters())}
    if variant.startswith("knn_"):
        before = rss_mb()
        for _ in range(steps + 1):
            start = time.perf_counter()
            pointops.knn_indices(points, points, 16, None if variant == "knn_dense" else pointops.KNN_CHUNK,
                                 tree=variant == "knn_tree")
            times.append(time.perf_counter() - start)
        return {"times_s": times[1:], "peak_rise_mb": peak_mb() - before, "rss_before_mb": before}
    raise ValueError(variant)


# glibc's default large-allocation threshold adapts (freed large blocks raise it, later ones then come from
# the heap and may stay resident); a fixed threshold hands every block >= 128 KiB back on free, so the RSS
# follows the live tensors. Both are measured.
ALLOCATORS = {"glibc_default": {}, "mmap_threshold_128k": {"MALLOC_MMAP_THRESHOLD_": "131072"}}


def run_worker(variant: str, steps: int, allocator: str) -> dict:
    env = {**os.environ, **ALLOCATORS[allocator]}
    out = subprocess.run([sys.executable, __file__, "--worker", variant, "--steps", str(steps)],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput(repeats: int) -> dict:
    """FPS (N -> N/4) and kNN (k=16 self, and 4-NN of 10 x N queries) at several sizes, in this process."""
    import torch

    from harness import pointops

    figures = {}
    for n in (10_000, 30_000, 100_000):
        cloud = room_cloud(n, seed=1)
        queries = (torch.rand(1, 10 * n, 3, generator=torch.Generator().manual_seed(2)) - 0.5) * 1.05
        row = {}
        fps = [_timed(lambda: pointops.farthest_point_sampling(cloud, n // 4)) for _ in range(1 if n > 30_000 else repeats)]
        row["fps_s"] = statistics.median(fps)
        row["fps_points_per_s"] = n / row["fps_s"]  # input points processed per second (N -> N/4 samples)
        knn = [_timed(lambda: pointops.knn_indices(cloud, cloud, 16)) for _ in range(repeats)]
        row["knn16_self_s"] = statistics.median(knn)
        row["knn16_self_queries_per_s"] = n / row["knn16_self_s"]
        chunks = [_timed(lambda: pointops.knn_indices(cloud, cloud, 16, tree=False)) for _ in range(repeats)]
        row["knn16_self_torch_chunks_s"] = statistics.median(chunks)
        if n <= 10_000:
            dense = [_timed(lambda: pointops.knn_indices(cloud, cloud, 16, None)) for _ in range(repeats)]
            row["knn16_self_dense_s"] = statistics.median(dense)
            unpruned = [_timed(lambda: pointops.knn_indices(cloud, cloud, 16, block=None, tree=False))
                        for _ in range(repeats)]
            row["knn16_self_unpruned_chunks_s"] = statistics.median(unpruned)
        else:
            row["knn16_self_dense_s"] = None  # its distance matrix alone would take n^2 x 4 bytes
            row["knn16_self_dense_matrix_gb"] = n * n * 4 / 1e9
        q = [_timed(lambda: pointops.knn_indices(queries, cloud, 4)) for _ in range(1 if n > 30_000 else repeats)]
        row["knn4_queries"] = 10 * n
        row["knn4_query_s"] = statistics.median(q)
        row["knn4_queries_per_s"] = 10 * n / row["knn4_query_s"]
        figures[str(n)] = row
        print(f"  {n:>7,} points: FPS to {n // 4:,} {row['fps_s']:.2f} s ({row['fps_points_per_s']:,.0f} points/s); "
              f"self 16-NN {row['knn16_self_s']:.3f} s ({row['knn16_self_queries_per_s']:,.0f} queries/s), "
              f"torch chunks {row['knn16_self_torch_chunks_s']:.3f} s"
              + (f", dense {row['knn16_self_dense_s']:.3f} s, unpruned chunks {row['knn16_self_unpruned_chunks_s']:.3f} s"
                 if row.get("knn16_self_dense_s") else "")
              + f"; 4-NN of {10 * n:,} queries {row['knn4_query_s']:.2f} s ({row['knn4_queries_per_s']:,.0f}/s)",
              flush=True)
    return figures


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per subprocess")
    parser.add_argument("--repeats", type=int, default=3, help="subprocesses per variant (interleaved)")
    parser.add_argument("--quick", action="store_true", help="1 repeat of 2 steps, throughput once")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps)))
        return
    if args.quick:
        args.steps, args.repeats = 2, 1
    import torch

    from results_file import save

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=HERE).stdout.strip()
    except OSError:
        commit = ""
    figures: dict = {"commit": commit, "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                     "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                     "load_average_before": os.getloadavg(), "input_points": N_POINTS, "batch": 1,
                     "memory_method": "ru_maxrss rise over the RSS before the first step, fresh subprocess per "
                                      "measurement, with glibc's default and with a fixed 128 KiB mmap threshold"}
    print(f"Point Transformer, paper sizes, {N_POINTS:,} points, batch 1, {figures['threads']} thread(s), "
          f"load average {figures['load_average_before'][0]:.2f}", flush=True)
    for allocator in ALLOCATORS:
        runs: dict[str, list[dict]] = {}
        for _ in range(args.repeats):
            for variant in ("network_tree", "network_chunked", "network_dense", "knn_tree", "knn_chunked", "knn_dense"):
                runs.setdefault(variant, []).append(run_worker(variant, args.steps, allocator))
        summary: dict = {}
        for variant, results in runs.items():
            times = [t for r in results for t in r["times_s"]]
            summary[variant] = {"median_s": statistics.median(times), "min_s": min(times),
                                "peak_rise_mb": statistics.median(r["peak_rise_mb"] for r in results),
                                "peak_rise_mb_all": [r["peak_rise_mb"] for r in results], "times_s": times}
            if "knn_fps_s" in results[0]:
                for key in ("knn_fps", "knn", "fps"):
                    summary[variant][f"{key}_median_s"] = statistics.median(t for r in results for t in r[f"{key}_s"])
                summary[variant]["parameters"] = results[0]["parameters"]
        print(f" allocator {allocator}:", flush=True)
        for kind in ("network", "knn"):
            dense = summary[f"{kind}_dense"]
            for search in ("tree", "chunked"):  # the default (KD-tree) and the torch search (other devices)
                ours = summary[f"{kind}_{search}"]
                suffix = "" if search == "tree" else "_torch_chunked"
                summary[f"{kind}_speedup{suffix}"] = dense["median_s"] / ours["median_s"]
                summary[f"{kind}_memory_ratio{suffix}"] = ours["peak_rise_mb"] / dense["peak_rise_mb"]
                label = ("forward+backward" if kind == "network" else "self 16-NN at 10k") + f", {search}"
                print(f"  {label:<27} {ours['median_s']:.3f} s, peak +{ours['peak_rise_mb']:.0f} MB | "
                      f"dense {dense['median_s']:.3f} s, peak +{dense['peak_rise_mb']:.0f} MB | speed-up "
                      f"{summary[f'{kind}_speedup{suffix}']:.2f}x, memory ratio "
                      f"{summary[f'{kind}_memory_ratio{suffix}']:.2f}", flush=True)
        for variant in ("network_tree", "network_chunked", "network_dense"):
            row = summary[variant]
            print(f"  {variant}: kNN {row['knn_median_s']:.3f} s + FPS {row['fps_median_s']:.3f} s of the step, "
                  f"the rest {row['median_s'] - row['knn_fps_median_s']:.3f} s", flush=True)
        default, dense = summary["network_tree"], summary["network_dense"]
        rest = default["median_s"] - default["knn_fps_median_s"]
        summary["bound_if_search_were_free"] = dense["median_s"] / rest
        summary["bound_if_knn_were_free"] = dense["median_s"] / (rest + default["fps_median_s"])
        met_speed, met_memory = summary["network_speedup"] >= 2.0, summary["network_memory_ratio"] <= 0.5
        print(f"  targets (>= 2x faster, <= 0.5x peak memory): speed {'met' if met_speed else 'NOT met'}, memory "
              f"{'met' if met_memory else 'NOT met'}; a free kNN would give at most "
              f"{summary['bound_if_knn_were_free']:.2f}x, a free kNN and FPS "
              f"{summary['bound_if_search_were_free']:.2f}x (the attention, MLPs and batch norms take {rest:.2f} s "
              f"in both); the dense matrices are transient, freed before the activations peak", flush=True)
        figures[allocator] = summary
    figures["parameters"] = figures["glibc_default"]["network_tree"]["parameters"]
    print("Throughput (default kNN: KD-tree, and torch chunks; FPS N -> N/4):", flush=True)
    figures["throughput"] = throughput(1 if args.quick else 3)
    figures["load_average_after"] = os.getloadavg()
    path = save("point_transformer" if figures["threads"] == 1 else f"point_transformer_{figures['threads']}_threads",
                figures)
    print(f"load average after {figures['load_average_after'][0]:.2f}; saved {path}")


if __name__ == "__main__":
    main()
