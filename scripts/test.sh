#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need (PostgreSQL from Debian when this
# user may), creates .venv with cronkeeper and its test tools, checks lint and types, then runs pytest.
# Extra arguments go to pytest, e.g. scripts/test.sh -k cron -x
set -euo pipefail
cd "$(dirname "$0")/.."

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && [ -z "${CRONKEEPER_TEST_PG_URL:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL for the store contract tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL is not installed: its tests will be skipped (install the 'postgresql' package)" >&2
  fi
fi

python3 -m venv .venv 2>/dev/null || [ -x .venv/bin/python ]
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,bench]'

.venv/bin/ruff check .
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
