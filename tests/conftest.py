"""Test-session fixtures."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def shared_dataset_cache(tmp_path_factory):
    """Generate each dataset configuration once per session: caches are keyed by fingerprint, verified on
    open and locked while written, so runs in separate homes (and subprocesses) can share one."""
    path = tmp_path_factory.mktemp("dataset_cache")
    previous = os.environ.get("HARNESS_CACHE")
    os.environ["HARNESS_CACHE"] = str(path)
    yield path
    if previous is None:
        del os.environ["HARNESS_CACHE"]
    else:
        os.environ["HARNESS_CACHE"] = previous
