"""Executing a run: threads for sync callables, an event loop for coroutines, child processes for isolated
callables and commands.  Each runner returns an :class:`Execution`; the engine turns it into a record."""

from __future__ import annotations

from cronkeeper.executors.runners import (
    Execution,
    run_callable,
    run_child,
    run_command,
    run_coroutine,
    run_isolated,
)

__all__ = ["Execution", "run_callable", "run_child", "run_command", "run_coroutine", "run_isolated"]
