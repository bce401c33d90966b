"""Every registered component passes the contract suite (:mod:`harness.testing`) a third-party plugin runs on itself."""
from __future__ import annotations

from harness.testing import ComponentContract


class TestEveryRegisteredComponent(ComponentContract):
    plugin = None
