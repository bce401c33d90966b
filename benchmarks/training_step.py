"""One training step of ResNet-PointNet + CBN occupancy decoder (forward, BCE, backward, Adam) per profile.

Batch size, point and query counts come from each profile's configs, so the figure is what
`harness run profile=<p>` pays per step on this machine. Median of timed steps after warm-up.
Prints a table, writes benchmarks/results/training_step.json.

Run: .venv/bin/python benchmarks/training_step.py
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch.nn import functional as F

from results_file import save

from harness.registry import default_registry
from harness.specs import Kind

STEPS = {"quick": 20, "paper": 5}


def config_for(spec, profile: str):
    return spec.config(**spec.profiles.get(profile, {}))


def main() -> None:
    registry = default_registry()
    encoder_spec, decoder_spec = registry.get(Kind.ENCODER, "pointnet"), registry.get(Kind.DECODER, "occupancy")
    protocol_spec, dataset_spec = registry.get(Kind.PROTOCOL, "reconstruction"), registry.get(Kind.DATASET, "synthetic_shapes")
    figures = {"threads": torch.get_num_threads()}
    for profile, steps in STEPS.items():
        protocol, data = config_for(protocol_spec, profile), config_for(dataset_spec, profile)
        encoder = encoder_spec.build(config_for(encoder_spec, profile), None)
        decoder = decoder_spec.build(config_for(decoder_spec, profile), encoder.encoding, None)
        params = list(encoder.parameters()) + list(decoder.parameters())
        optimizer = torch.optim.Adam(params, lr=protocol.lr)
        points = torch.randn(protocol.batch_size, data.input_points, 3) * 0.3
        query = torch.rand(protocol.batch_size, data.query_points, 3) - 0.5
        target = (query.norm(dim=-1) < 0.3).float()
        times = []
        for step in range(steps + 2):
            start = time.perf_counter()
            loss = F.binary_cross_entropy_with_logits(decoder(query, encoder(points)), target,
                                                      reduction="none").sum(-1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= 2:
                times.append(time.perf_counter() - start)
        figures[profile] = {"batch_size": protocol.batch_size, "input_points": data.input_points,
                            "query_points": data.query_points, "parameters": sum(p.numel() for p in params),
                            "step_ms_median": 1000 * float(np.median(times))}
        print(f"{profile:>6}: batch {protocol.batch_size}, {figures[profile]['parameters']:,} parameters, "
              f"{figures[profile]['step_ms_median']:.1f} ms/step")
    save("training_step", figures)


if __name__ == "__main__":
    main()
