"""The command line in a folder of its own, with a database there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import Cli, make_cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)
