"""Where every benchmark saves its figures: benchmarks/results/<name>.json (git-ignored)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save(name: str, figures: dict[str, Any]) -> Path:
    path = Path(__file__).parent / "results" / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return path
