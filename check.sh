#!/usr/bin/env bash
# Install what the tests need, then run lint, type checks, and the whole suite.
# This is the project's one test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
python -m ruff check .
python -m mypy
python -m pytest -n 2 "$@"
