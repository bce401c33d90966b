"""The compressors' speed, side by side (issue 4's targets):

- BFP quantiser throughput, M elements/s, on a [32, 256, 28, 28] float32 activation (8 bits, blocks of 32 along the
  channels): harness.quantisation.bfp_quantise, the straightforward log2/floor/exp2 implementation it replaced
  (kept here only as a reference), and a plain tensor copy (the memory-bandwidth bound). Target >= 165 M/s.
- Forward time of a DSConv-quantised 256 -> 256 3x3 convolution (padding 1, 4 bits, evaluation, no grad) on that
  activation, relative to the float convolution. Target <= 1.2x.

Medians (and minima) of timed repeats after warm-up, torch threads = 2; the candidates take turns within each
repeat. Other processes on the machine disturb the figures (two busy threads share 2 cores with them): run it
on a quiet machine, or several times, and compare the best and median figures. Prints a table, writes benchmarks/results/compressors.json.

Run: .venv/bin/python benchmarks/compressors.py [--repeats N] [--threads T]
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from results_file import save

from harness.quantisation import bfp_quantise
from harness_plugins.compressors.dsconv.layer import DSConvLayer

SHAPE = (32, 256, 28, 28)


def log2_bfp(x: torch.Tensor, bits: int, block: int = 32, axis: int = 1, exponent_bits: int = 7) -> torch.Tensor:
    """The straightforward implementation (harness.quantisation before it was optimised), for comparison only:
    move the axis last, pad, isfinite/where, log2/floor/exp2, round, clamp, divide, where."""
    moved = x.movedim(axis, -1)
    length = moved.shape[-1]
    padded = torch.nn.functional.pad(moved, (0, -length % block))
    blocks = padded.reshape(*padded.shape[:-1], -1, block)
    finite = torch.isfinite(blocks)
    magnitude = torch.where(finite, blocks.abs(), torch.zeros_like(blocks)).amax(dim=-1, keepdim=True)
    low, high = -(2 ** (exponent_bits - 1)), 2 ** (exponent_bits - 1) - 1
    exponent = torch.floor(torch.log2(magnitude)).clamp(low, high)
    scale = torch.exp2(bits - 2 - exponent)
    limit = 2 ** (bits - 1) - 1
    quantised = torch.where(finite, torch.round(blocks * scale).clamp(-limit, limit) / scale, blocks)
    return quantised.reshape(padded.shape)[..., :length].movedim(-1, axis)


def timed(functions: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, dict[str, float]]:
    """Median and minimum milliseconds of each function; the functions take turns within every repeat, so that a
    burst of load from other processes falls on all of them alike."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: {"median_ms": 1000 * float(np.median(values)), "min_ms": 1000 * float(np.min(values)),
                   "runs_ms": [round(1000 * value, 3) for value in values]} for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the targets are for 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(SHAPE)
    elements = x.numel()
    figures: dict[str, object] = {"threads": torch.get_num_threads(), "shape": list(SHAPE),
                                  "repeats": args.repeats, "load_average": list(os.getloadavg())}

    assert torch.equal(bfp_quantise(x, 8), log2_bfp(x, 8))  # the same numbers (finite, float32, 7 exponent bits)
    throughput = timed({"bfp_quantise": lambda: bfp_quantise(x, 8), "log2_reference": lambda: log2_bfp(x, 8),
                        "tensor_copy": lambda: x.clone()}, args.repeats)
    for timing in throughput.values():
        timing["melements_per_s_median"] = elements / timing["median_ms"] / 1e3
        timing["melements_per_s_best"] = elements / timing["min_ms"] / 1e3
    figures["bfp_throughput"] = throughput
    figures["bfp_target_melements_per_s"] = 165

    conv = nn.Conv2d(256, 256, 3, padding=1).eval()
    dsconv = DSConvLayer(conv, bits=4, block=32).eval()
    with torch.no_grad():
        forward = timed({"float_conv": lambda: conv(x), "dsconv": lambda: dsconv(x)}, args.repeats)
    float_timing, dsconv_timing = forward["float_conv"], forward["dsconv"]
    pairs = [d / f for d, f in zip(dsconv_timing["runs_ms"], float_timing["runs_ms"])]
    figures["dsconv_forward"] = {
        "float_conv": float_timing, "dsconv": dsconv_timing,
        "ratio_median": dsconv_timing["median_ms"] / float_timing["median_ms"],
        "ratio_best": dsconv_timing["min_ms"] / float_timing["min_ms"],
        "ratio_median_of_pairs": float(np.median(pairs)), "target_ratio": 1.2}

    print(f"BFP 8-bit, blocks of 32, on {list(SHAPE)} float32 ({elements:,} elements), {args.repeats} repeats, "
          f"{torch.get_num_threads()} threads, load average {figures['load_average'][0]:.2f}")
    for name, timing in throughput.items():
        print(f"  {name:>15}: median {timing['median_ms']:7.2f} ms = {timing['melements_per_s_median']:7.0f} M/s   "
              f"best {timing['min_ms']:7.2f} ms = {timing['melements_per_s_best']:7.0f} M/s")
    d = figures["dsconv_forward"]
    print("DSConv 4-bit 256->256 3x3 forward (eval, no grad) vs float conv on the same activation:")
    print(f"  float conv: median {float_timing['median_ms']:.1f} ms (best {float_timing['min_ms']:.1f})   "
          f"dsconv: median {dsconv_timing['median_ms']:.1f} ms (best {dsconv_timing['min_ms']:.1f})   "
          f"ratio median {d['ratio_median']:.3f}x, best/best {d['ratio_best']:.3f}x, "
          f"median of paired runs {d['ratio_median_of_pairs']:.3f}x")
    name = "compressors" if args.threads == 2 else f"compressors_{args.threads}_threads"
    print(f"saved {save(name, figures)}")


if __name__ == "__main__":
    main()
