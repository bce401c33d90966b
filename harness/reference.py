"""Published figures from the papers (tidy CSV in ``../shared/reference``), shown beside measured results.

Values are kept as the strings printed in the papers ("0.80" stays "0.80", "+0" stays "+0"): they are
quoted, never recomputed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

REFERENCE_COLUMNS = ("source", "table", "dataset", "input", "method", "config", "metric", "direction", "value",
                     "scale_note")
ENV_VAR = "HARNESS_REFERENCE_DIR"


def reference_dir() -> Path | None:
    """Where the published tables live: ``$HARNESS_REFERENCE_DIR``, else ``shared/reference`` beside the repository."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    repository = Path(__file__).resolve().parent.parent
    candidates = (Path.cwd().parent / "shared" / "reference", repository.parent / "shared" / "reference")
    return next((path for path in candidates if path.is_dir()), None)


def load_reference(tables: Sequence[str], datasets: Sequence[str], directory: Path) -> pd.DataFrame:
    """Rows of the named tables (CSV stems) whose ``dataset`` is one of ``datasets`` (all when empty), as strings."""
    frames = [_read_table(Path(directory) / f"{table}.csv") for table in tables]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(REFERENCE_COLUMNS))
    if datasets:
        rows = rows[rows["dataset"].isin(list(datasets))]
    return rows.reset_index(drop=True)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"published reference table {path} does not exist")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"published reference table {path} is not a readable CSV: {exc}") from exc
    missing = [column for column in REFERENCE_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"published reference table {path} lacks columns: {', '.join(missing)}")
    return frame[list(REFERENCE_COLUMNS)]
