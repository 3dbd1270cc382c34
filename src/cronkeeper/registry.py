"""Finding the function behind a job: first the callables registered in this process, then the import path.

Jobs are stored as ``package.module:function`` plus JSON arguments, never pickled, so any process that can
import the path can run the job.  Each scheduler owns its registry; there is no module-level state.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from cronkeeper.exceptions import TargetImportError


def ref_of(func: Callable[..., Any]) -> str:
    """The ``module:qualname`` path of a function, which is how jobs name their target."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname:
        raise TargetImportError(repr(func), "it has no module and qualified name; pass an import path")
    return f"{module}:{qualname}"


def import_ref(ref: str) -> Callable[..., Any]:
    """Import ``package.module:attr.attr``; raises TargetImportError saying what failed."""
    module_name, _, attr_path = ref.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # a module that exits on import must not end the scheduler
        raise TargetImportError(ref, f"{type(exc).__name__}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise TargetImportError(ref, f"module {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(target):
        raise TargetImportError(ref, "it is not callable")
    return target  # type: ignore[no-any-return]


class Registry:
    """Callables known to this process by their reference."""

    def __init__(self) -> None:
        self._callables: dict[str, Callable[..., Any]] = {}
        self._coroutine: dict[str, bool] = {}

    def register(self, func: Callable[..., Any], ref: str | None = None) -> str:
        """Remember ``func`` under ``ref`` (default: its own import path) and return the reference."""
        key = ref or ref_of(func)
        self._callables[key] = func
        self._coroutine.pop(key, None)
        return key

    def resolve(self, ref: str) -> Callable[..., Any]:
        """The registered callable, else the imported one (kept for next time)."""
        found = self._callables.get(ref)
        if found is None:
            found = self._callables[ref] = import_ref(ref)
        return found

    def is_coroutine(self, ref: str) -> bool:
        """Whether the (already resolved) callable is a coroutine function; asked on every dispatch."""
        answer = self._coroutine.get(ref)
        if answer is None:
            answer = self._coroutine[ref] = inspect.iscoroutinefunction(self.resolve(ref))
        return answer
