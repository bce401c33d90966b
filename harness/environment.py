"""The environment stamp stored with every run and shown under each leaderboard."""
from __future__ import annotations

import platform
import socket
from functools import lru_cache

import harness


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str) -> dict[str, str]:
    import torch

    stamp = {
        "harness": harness.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "cpu": cpu_model(),
        "threads": str(torch.get_num_threads()),
        "hostname": socket.gethostname(),
    }
    if device.startswith("cuda"):
        stamp["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return stamp
