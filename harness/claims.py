"""The claims a protocol's papers make, as comparisons between rows of the results store.

A protocol declares them (``ProtocolCaps.claims``) so that ``leaderboards/findings.md`` can set the published
numbers beside the measured ones with a verdict (:mod:`harness.findings`). Kept free of torch and pandas: the
protocols' ``__init__`` modules, imported to list components, declare claims.

How a claim reads: ``interval`` = [lo, hi] bounds A − B (or A alone when there is no row B), in the measured
metric's own units and direction, bounds included, ``math.inf`` for an open end. So for a higher-is-better metric
"A beats B" is [0, inf] (``ABOVE``); for a lower-is-better one (Chamfer distance) "A is worse than B" is ``ABOVE``
too; "costs about a point of top-1" on a compressed model's change is [-0.02, 0]; "as good as" is a band around 0
as wide as the paper's own tables vary.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# the open-ended intervals: A above B (beats it on a higher-is-better metric, worse on a lower-is-better one), below
ABOVE = (0.0, math.inf)
BELOW = (-math.inf, 0.0)


@dataclass(frozen=True)
class RowSelector:
    """One measured row: the runs of a protocol whose stored resolved config has the given values, and one of
    their metrics."""

    protocol: str
    metric: str
    # dotted config keys -> the values the run's resolved config must hold there, e.g. {"protocol.row": "frozen"},
    # {"protocol.tasks": ["occupancy", "classification"]} (lists compare whole); a run lacking a key never matches
    config: Mapping[str, Any] = field(default_factory=dict)
    dataset: str | None = None  # None: judged on every dataset the runs are on, each on its own
    split: str = "test"
    class_name: str | None = None  # a metric's breakdown, e.g. a quantisation configuration; None: the overall one

    def matches(self, config: Mapping[str, Any]) -> bool:
        """Whether a run's stored resolved config holds every one of the selector's dotted keys with its value
        (compared as JSON: a declared tuple equals the stored list)."""
        missing = object()
        for key, value in self.config.items():
            node: Any = config
            for part in key.split("."):
                node = node.get(part, missing) if isinstance(node, Mapping) else missing
            if node is missing or node != json.loads(json.dumps(value)):
                return False
        return True

    def describe(self) -> str:
        """How the page names the row: protocol, config values, metric."""
        where = [f"{key}={value if isinstance(value, str) else json.dumps(value)}"
                 for key, value in sorted(self.config.items())]
        if self.dataset:
            where.insert(0, f"dataset={self.dataset}")
        metric = self.metric if self.class_name is None else f"{self.metric}[{self.class_name}]"
        return f"{self.protocol} ({', '.join(where)}): {metric}" if where else f"{self.protocol}: {metric}"


@dataclass(frozen=True)
class Claim:
    """A comparison a paper makes, with the numbers it printed (converted to the measured metric's units)."""

    id: str  # unique over the registry; names the claim on the page
    statement: str  # the claim in words
    source: str  # paper and table the published numbers come from, e.g. "generalising2022 Table 2"
    a: RowSelector
    interval: tuple[float, float]  # [lo, hi] on A − B, or on A when ``b`` is None (see the module docstring)
    b: RowSelector | None = None
    published_a: float | None = None
    published_b: float | None = None

    def __post_init__(self) -> None:
        lo, hi = self.interval
        if not lo <= hi:  # NaN too
            raise ValueError(f"claim {self.id!r}: interval {self.interval} must have lo <= hi")
        if self.b is None and self.published_b is not None:
            raise ValueError(f"claim {self.id!r}: a published B value needs a row B")
        if self.b is not None and None not in (self.a.dataset, self.b.dataset) and self.a.dataset != self.b.dataset:
            raise ValueError(f"claim {self.id!r}: rows A and B are compared on one dataset, not on "
                             f"{self.a.dataset} and {self.b.dataset}")

    def published_difference(self) -> float | None:
        """What the paper's numbers say about A − B (or A), when it printed them."""
        if self.published_a is None:
            return None
        if self.b is None:
            return self.published_a
        return None if self.published_b is None else self.published_a - self.published_b
