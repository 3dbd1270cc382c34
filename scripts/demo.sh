#!/usr/bin/env bash
# Start cronkeeper with its demo jobs and its dashboard (http://127.0.0.1:8787/; the admin password is printed
# at the first start) on a SQLite file in this folder (demo.db).  Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv 2>/dev/null || [ -x .venv/bin/python ]
.venv/bin/python -m pip install -q -e .
exec .venv/bin/cronkeeper --db "${CRONKEEPER_DB:-sqlite:///demo.db}" serve --demo "$@"
