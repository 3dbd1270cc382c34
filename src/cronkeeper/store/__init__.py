"""Persistence: the JobStore contract and its SQLAlchemy implementation."""

from __future__ import annotations

from cronkeeper.store.base import ClaimResult, Completion, JobStore, RunFilter
from cronkeeper.store.sql import SqlJobStore

__all__ = ["ClaimResult", "Completion", "JobStore", "RunFilter", "SqlJobStore"]
