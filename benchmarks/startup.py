"""Start-up time of `harness list` (target <= 2 s: torch and plugin implementations load lazily).

Median of several fresh processes. Prints, writes benchmarks/results/startup.json.

Run: .venv/bin/python benchmarks/startup.py
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

from results_file import save

RUNS = 5


def main() -> None:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness.cli", "list"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    probe = subprocess.run([sys.executable, "-c", "import harness.cli, sys; harness.cli.cmd_list([]); "
                            "print('torch' in sys.modules)"], capture_output=True, text=True, check=True)
    figures = {"harness_list_s_median": statistics.median(times), "runs": RUNS,
               "torch_imported_by_list": probe.stdout.strip().splitlines()[-1] == "True"}
    print(f"harness list: {figures['harness_list_s_median']:.2f} s (median of {RUNS}); "
          f"torch imported: {figures['torch_imported_by_list']}")
    save("startup", figures)


if __name__ == "__main__":
    main()
