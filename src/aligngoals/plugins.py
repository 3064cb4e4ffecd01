"""One small registry for everything users extend: backends, methods, judge modes, tasks, formats.

Why: a new backend, alignment method, judge mode, task or data format should be one
file in aligngoals or one installed package, not an edit to an if-chain. Built-in
entries register themselves when their module is imported; third-party packages
add entries through Python entry points (``[project.entry-points."aligngoals.backends"]``
and so on), loaded the first time the registry is read. Entry points are the
standard packaging mechanism (importlib.metadata), so nothing here is home-made
beyond the bookkeeping.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

from aligngoals.errors import ConfigError

T = TypeVar("T")

#: Entry-point group of each registry kind.
GROUPS = {
    "backends": "aligngoals.backends",
    "methods": "aligngoals.methods",
    "judge_modes": "aligngoals.judge_modes",
    "tasks": "aligngoals.tasks",
    "formats": "aligngoals.formats",
}


class Registry(Generic[T]):
    """Named entries of one kind, filled by built-in modules and by installed plug-ins.

    ``builtin_modules`` are imported (by name, so the registry does not import its own
    plug-ins at module level) before the first lookup; then every entry point of the
    group is loaded. An entry point may name an object (registered under the entry
    point's name) or a module (which registers its entries itself on import).
    """

    def __init__(self, kind: str, group: str, builtin_modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.group = group
        self._builtin_modules = builtin_modules
        self._entries: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._loaded = False
        self.load_errors: dict[str, str] = {}

    # --- writing -----------------------------------------------------------------------
    def add(self, name: str, entry: T, *, origin: str = "aligngoals") -> T:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"A {self.kind} needs a non-empty name, got {name!r}.")
        old = self._entries.get(name)
        if old is not None and old is not entry and self._origin.get(name) != origin:
            raise ConfigError(
                f"{self.kind} {name!r} is registered twice ({self._origin[name]} and {origin}).",
                hint="Rename one of them; names are global across installed plug-ins.",
            )
        self._entries[name] = entry
        self._origin[name] = origin
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def deco(obj: T) -> T:
            return self.add(name, obj, origin=getattr(obj, "__module__", "aligngoals"))

        return deco

    # --- reading -----------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for mod in self._builtin_modules:
            importlib.import_module(mod)
        for ep in _entry_points(self.group):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plug-in must not break aligngoals; it is reported instead
                self.load_errors[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"
                continue
            if not isinstance(obj, type(importlib)):  # a module registers its own entries
                self.add(ep.name, obj, origin=f"entry point {ep.value}")

    def get(self, name: str) -> T:
        self._ensure_loaded()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none"
            broken = f" (plug-in {name!r} failed to load: {self.load_errors[name]})" if name in self.load_errors else ""
            raise ConfigError(f"Unknown {self.kind} {name!r}{broken}.", hint=f"Known: {known}.")
        return self._entries[name]

    def names(self) -> list[str]:
        self._ensure_loaded()
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._ensure_loaded()
        return iter(list(self._entries.items()))

    def origin(self, name: str) -> str:
        self._ensure_loaded()
        return self._origin.get(name, "?")

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries


def _entry_points(group: str) -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=group))
