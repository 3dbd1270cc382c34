"""A context variable set for the duration of a ``with`` block.

Entered several times per run (the run, its output, the scheduler's services), where a ``@contextmanager``
generator costs twice as much as this class; so the modules that keep per-run context return one of these.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Generic, TypeVar

T = TypeVar("T")


class Scoped(Generic[T]):
    """``with Scoped(variable, value):`` sets ``variable`` to ``value`` and restores it on the way out."""

    __slots__ = ("_token", "_value", "_variable")

    def __init__(self, variable: ContextVar[T], value: T) -> None:
        self._variable, self._value = variable, value

    def __enter__(self) -> None:
        self._token: Token[T] = self._variable.set(self._value)

    def __exit__(self, *_: object) -> None:
        self._variable.reset(self._token)
