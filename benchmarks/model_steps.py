"""One training step (forward, cross-entropy through the paper's linear head, backward, SGD step) of the models of
the compression papers, on random inputs of the sizes they train on here:

- resnet_cifar: ResNet-20 (paper size), batch 128 of 3x32x32 images;
- r3d: its quick profile (base width 16), batch 32 of 3x8x32x32 clips;
- voxnet (paper size) and shapenets_cnn (paper size and quick profile): batch 32 of 1x32^3 grids.

Median of timed steps after warm-up. Prints a table, writes benchmarks/results/model_steps.json.

Run: .venv/bin/python benchmarks/model_steps.py
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch.nn import functional as F

from results_file import save

from harness.data import DatasetInfo
from harness.registry import default_registry
from harness.specs import Kind

CLASSES = 10
WARMUP = 2
# (label, encoder, profile or None for the paper's sizes, modality, batch, sample shape, timed steps)
CASES = (
    ("resnet20", "resnet_cifar", None, "image", 128, (3, 32, 32), 10),
    ("r3d18_quick", "r3d", "quick", "video", 32, (3, 8, 32, 32), 5),
    ("voxnet", "voxnet", None, "voxels", 32, (1, 32, 32, 32), 10),
    ("shapenets_cnn", "shapenets_cnn", None, "voxels", 32, (1, 32, 32, 32), 5),
    ("shapenets_cnn_quick", "shapenets_cnn", "quick", "voxels", 32, (1, 32, 32, 32), 10),
)


def main() -> None:
    registry = default_registry()
    head_spec = registry.get(Kind.DECODER, "classifier")
    figures = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    torch.manual_seed(0)
    for label, name, profile, modality, batch, shape, steps in CASES:
        info = DatasetInfo(name="random", modalities=(modality,), targets=("label",),
                           classes=tuple(str(i) for i in range(CLASSES)), input_shapes={modality: shape})
        spec = registry.get(Kind.ENCODER, name)
        encoder = spec.build(spec.config(**(spec.profiles[profile] if profile else {})), info)
        head = head_spec.build(head_spec.config(hidden=0), encoder.encoding, info)
        params = [*encoder.parameters(), *head.parameters()]
        optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        x = torch.rand(batch, *shape)
        if modality == "voxels":
            x = x.round()
        labels = torch.randint(0, CLASSES, (batch,))
        times = []
        for step in range(WARMUP + steps):
            start = time.perf_counter()
            loss = F.cross_entropy(head(encoder(x)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= WARMUP:
                times.append(time.perf_counter() - start)
        figures[label] = {"encoder": name, "profile": profile or "paper", "batch_size": batch, "input": list(shape),
                          "parameters": sum(p.numel() for p in params),
                          "step_ms_median": 1000 * float(np.median(times)),
                          "step_ms_min": 1000 * float(np.min(times))}
        print(f"{label:>20}: batch {batch} of {'x'.join(map(str, shape))}, {figures[label]['parameters']:,} "
              f"parameters, {figures[label]['step_ms_median']:.1f} ms/step (min {figures[label]['step_ms_min']:.1f})")
    save("model_steps", figures)


if __name__ == "__main__":
    main()
