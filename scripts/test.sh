#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need (PostgreSQL and Chromium from Debian
# when this user may), creates .venv with cronkeeper and its test tools, checks lint, types and the import layers,
# then runs pytest with branch coverage.
# Extra arguments go to pytest, e.g. scripts/test.sh -k cron -x
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: PostgreSQL (store contract suite) and Chromium (dashboard browser tests).
missing=()
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && [ -z "${CRONKEEPER_TEST_PG_URL:-}" ]; then
  missing+=(postgresql)
fi
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} for the tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "not installed: ${missing[*]}; their tests will be skipped (install the Debian packages)" >&2
  fi
fi

python3 -m venv .venv 2>/dev/null || [ -x .venv/bin/python ]
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,bench]'

.venv/bin/ruff check .
.venv/bin/ruff format --check src tests bench examples
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
# Branch coverage of the whole suite: the total and each module not fully covered are printed at the end.
# Three workers (pytest-xdist): most tests wait on real processes, sockets and clocks rather than compute,
# so three share two cores well; `-n 0` (or any -n) after the script's name overrides it.
.venv/bin/python -m pytest -n 3 --cov=cronkeeper --cov-branch --cov-report=term:skip-covered "$@"
