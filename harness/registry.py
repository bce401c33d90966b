"""The component registry: loads plugins one by one so a broken plugin never takes the tool down.

Each entry point of the group ``harness`` is imported, registered with pluggy and asked for its
components on its own. A plugin that fails to import, fails pluggy's validation (a misspelled hook
is caught by ``check_pending``) or raises while registering is recorded with its error and all of
its components are dropped; every other plugin keeps working. ``HARNESS_DISABLE_PLUGINS`` (comma
separated entry-point names) skips chosen plugins.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from types import ModuleType
from typing import Iterable

import pluggy

from harness.hooks import HOOK_BY_KIND, PROJECT, HarnessHooks
from harness.specs import ComponentSpec, Kind

DISABLE_ENV = "HARNESS_DISABLE_PLUGINS"


@dataclass
class PluginInfo:
    """One plugin (an entry point) and how loading it went."""

    name: str
    module: str
    distribution: str = ""
    version: str = ""
    status: str = "loaded"  # loaded | failed | disabled
    error: str = ""
    components: list[tuple[Kind, str]] = field(default_factory=list)  # registered (or attempted, if failed)


class UnknownComponentError(LookupError):
    """A lookup of a name that is not registered; the message says why and what exists."""


class Registry:
    def __init__(self) -> None:
        self._specs: dict[Kind, dict[str, ComponentSpec]] = {kind: {} for kind in Kind}
        self.plugins: list[PluginInfo] = []
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(HarnessHooks)

    # ----- loading -------------------------------------------------------------------------------
    @classmethod
    def from_entry_points(cls, group: str = PROJECT, disabled: Iterable[str] | None = None) -> "Registry":
        if disabled is None:
            disabled = [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]
        registry = cls()
        skip = set(disabled)
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(name=ep.name, module=ep.value,
                              distribution=dist.name if dist else "", version=dist.version if dist else "")
            if ep.name in skip:
                info.status = "disabled"
                info.error = f"disabled by {DISABLE_ENV}"
                registry.plugins.append(info)
                continue
            try:
                module = ep.load()
            except Exception as exc:  # an import error of one plugin must not stop the others
                registry._record_failure(info, exc)
                continue
            registry.add_plugin(module, info)
        return registry

    def add_plugin(self, module: ModuleType | object, info: PluginInfo) -> PluginInfo:
        """Register one plugin object with pluggy and collect its components, all or nothing."""
        try:
            self._pm.register(module, name=info.name)
            self._pm.check_pending()
        except Exception as exc:
            if self._pm.is_registered(module):
                self._pm.unregister(module)
            return self._record_failure(info, exc)

        staged: dict[Kind, dict[str, ComponentSpec]] = {kind: {} for kind in Kind}
        others = [p for p in self._pm.get_plugins() if p is not module]
        try:
            for kind, hook in HOOK_BY_KIND.items():
                caller = self._pm.subset_hook_caller(hook, remove_plugins=others)
                caller(register=self._registrar(kind, info, staged))
        except Exception as exc:
            self._pm.unregister(module)
            return self._record_failure(info, exc)

        for kind, specs in staged.items():
            self._specs[kind].update(specs)
        self.plugins.append(info)
        return info

    def _registrar(self, kind: Kind, info: PluginInfo, staged: dict[Kind, dict[str, ComponentSpec]]):
        def register(spec: ComponentSpec) -> None:
            if not isinstance(spec, ComponentSpec):
                raise TypeError(f"register() takes a ComponentSpec, got {type(spec).__name__}")
            info.components.append((spec.kind, spec.name))
            if spec.kind != kind:
                raise ValueError(f"{spec.kind} {spec.name!r} was passed to {HOOK_BY_KIND[kind]}; "
                                 f"register it from {HOOK_BY_KIND[spec.kind]}")
            existing = self._specs[kind].get(spec.name) or staged[kind].get(spec.name)
            if existing is not None:
                raise ValueError(f"{kind} {spec.name!r} is already registered by plugin {existing.plugin!r}")
            staged[kind][spec.name] = dataclasses.replace(spec, plugin=info.name)
        return register

    def _record_failure(self, info: PluginInfo, exc: BaseException) -> PluginInfo:
        info.status = "failed"
        last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
        info.error = f"{type(exc).__name__}: {exc}{where}"
        self.plugins.append(info)
        return info

    # ----- lookup --------------------------------------------------------------------------------
    def names(self, kind: Kind | str) -> list[str]:
        return sorted(self._specs[Kind(kind)])

    def specs(self, kind: Kind | str) -> list[ComponentSpec]:
        kind = Kind(kind)
        return [self._specs[kind][name] for name in self.names(kind)]

    def get(self, kind: Kind | str, name: str) -> ComponentSpec:
        kind = Kind(kind)
        spec = self._specs[kind].get(name)
        if spec is not None:
            return spec
        raise UnknownComponentError(self._explain_missing(kind, name))

    def _explain_missing(self, kind: Kind, name: str) -> str:
        available = self.names(kind)
        message = f"unknown {kind} {name!r}."
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
        if close:
            message += f" Did you mean {', '.join(repr(c) for c in close)}?"
        message += f" Available {kind}s: {', '.join(available) if available else '(none)'}."
        for plugin in self.plugins:
            if plugin.status == "loaded":
                continue
            if (kind, name) in plugin.components:
                return (f"{kind} {name!r} is not registered: its plugin {plugin.name!r} {plugin.status} "
                        f"({plugin.error}). " + message)
            message += f" Plugin {plugin.name!r} {plugin.status} ({plugin.error}) and may have provided it."
        return message + " See `harness plugins`."


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of every installed plugin, loaded once per process."""
    return Registry.from_entry_points()
