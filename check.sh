#!/usr/bin/env bash
# Install what the tests need (pinned by constraints.txt, the lock), then run lint,
# type checks and the whole suite. This is the project's one test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
python - <<'PY'
import importlib.metadata as m, sys
names = ("pydantic", "simpleeval", "hypothesis", "pandas", "dask")
print(f"check.sh: {sys.prefix} (Python {sys.version.split()[0]}):",
      ", ".join(f"{n} {m.version(n)}" for n in names))
PY
python -m ruff check .
python -m mypy
# the layered import contract ([tool.importlinter] in pyproject.toml; docs/architecture.md)
python -c "from importlinter.cli import lint_imports_command; lint_imports_command()" --no-logo --no-cache
python -m pytest -n 2 "$@"
