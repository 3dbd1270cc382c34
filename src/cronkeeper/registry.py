"""Finding the function behind a job: first the callables registered with one scheduler object, then the
import path.

Jobs are stored as ``package.module:function`` plus JSON arguments, never pickled, so any process that can
import the path can run the job.  A callable its reference does not import as itself (a bound method, a
lambda, a local function, a partial) is *local*: only the scheduler object that registered it can run it, and
its jobs are kept there (``Job.runs_on``).  Each scheduler owns its registry; there is no module-level state.
"""

from __future__ import annotations

import importlib
import inspect
import re
import threading
from collections.abc import Callable
from typing import Any

from cronkeeper.exceptions import TargetImportError

_NOT_IN_NAME = re.compile(r"[^\w.<>]+")


def ref_of(func: Callable[..., Any]) -> str:
    """The ``module:qualname`` of a callable, which is how jobs name their target: a lambda's ``<lambda>``
    becomes ``lambda`` (a reference must start with a letter), and objects without a qualified name (a
    callable instance) are named after their class."""
    module = getattr(func, "__module__", None) or type(func).__module__ or "__main__"
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    qualname = _NOT_IN_NAME.sub("", qualname.replace("<lambda>", "lambda"))
    if not qualname or not (qualname[0].isalpha() or qualname[0] == "_"):
        qualname = f"job_{qualname}"
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


def imports_as(func: Callable[..., Any], ref: str) -> bool:
    """Whether importing ``ref`` gives ``func`` back (equal, as a bound method of the same object is), so that
    any process can run it."""
    try:
        return import_ref(ref) == func
    except TargetImportError:
        return False


def _differs(registered: Callable[..., Any], func: Callable[..., Any]) -> bool:
    return bool(registered != func)


def _of_another_object(registered: Callable[..., Any], func: Callable[..., Any]) -> bool:
    """Whether both are methods, bound to different objects."""
    owner = getattr(registered, "__self__", None)
    other = getattr(func, "__self__", None)
    return owner is not None and other is not None and owner is not other


class Registry:
    """Callables known to one scheduler object by their reference."""

    def __init__(self) -> None:
        self._callables: dict[str, Callable[..., Any]] = {}
        self._coroutine: dict[str, bool] = {}
        self._local: set[str] = set()
        self._failures: dict[str, str] = {}  # why a reference last failed to import, until it imports
        self._lock = threading.Lock()

    def register(
        self, func: Callable[..., Any], ref: str | None = None, *, one_per_callable: bool = False
    ) -> str:
        """Remember ``func`` under ``ref`` (default: its own ``module:qualname``) and return the reference.

        A bound method of a second object of one class gets ``_2``, ``_3``… in the order registered: each
        object keeps a job of its own.  Another local callable under a taken reference (a lambda made again
        by code that declares its jobs again) replaces the one registered, as its job does, unless
        ``one_per_callable`` (APScheduler's way: every callable added is a job of its own) suffixes it too.
        """
        base = ref or ref_of(func)
        importable = imports_as(func, base)
        distinct = _differs if one_per_callable else _of_another_object
        with self._lock:
            key = base
            if importable:
                self._local.discard(key)
            else:
                count = 1
                while key in self._local and distinct(self._callables[key], func):
                    count += 1
                    key = f"{base}_{count}"
                self._local.add(key)
            self._callables[key] = func
            self._coroutine.pop(key, None)
        return key

    def is_local(self, ref: str) -> bool:
        """Whether ``ref`` names a callable only this registry has, which no other process can import."""
        return ref in self._local

    def resolve(self, ref: str) -> Callable[..., Any]:
        """The registered callable, else the imported one (kept for next time)."""
        found = self._callables.get(ref)
        if found is None:
            try:
                found = self._callables[ref] = import_ref(ref)
            except TargetImportError as exc:
                self._failures[ref] = str(exc)
                raise
            self._failures.pop(ref, None)
        return found

    def known_problem(self, ref: str) -> str | None:
        """Why ``ref`` failed to import the last time it was tried here (None: it did not fail), without
        importing anything now."""
        return self._failures.get(ref)

    def is_coroutine(self, ref: str) -> bool:
        """Whether the (already resolved) callable is a coroutine function; asked on every dispatch."""
        answer = self._coroutine.get(ref)
        if answer is None:
            answer = self._coroutine[ref] = inspect.iscoroutinefunction(self.resolve(ref))
        return answer
