"""The layered import graph (issue 16; docs/architecture.md).

The contract itself is import-linter's (``[tool.importlinter]`` in pyproject.toml,
run by check.sh). These tests keep it honest:

- no module imports a private name (``_x``) of another module of the package;
- every import the layers contract lets point up is really a type-only import
  (under ``if TYPE_CHECKING:``), except the entries marked TEMPORARY;
- the contract fails, naming itself, when an upward import comes back (checked on
  a copy of the package, with the real ``lint-imports``), and passes the copy as is.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "incentives"
PYPROJECT = ROOT / "pyproject.toml"
LAYERS = "incentives: the import graph only points down"
CORE = "incentives: the core imports none of the integrations"


@dataclass(frozen=True)
class Import:
    """One import statement's target, as import-linter sees it."""

    module: str  # the importing module
    target: str  # the imported module
    names: tuple[str, ...]  # the names taken from it (``from x import a, b``)
    line: int
    type_only: bool  # under ``if TYPE_CHECKING:``
    lazy: bool  # inside a function


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, package: Path) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    base = package / rel
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(package: Path = PACKAGE) -> Iterator[Import]:
    """Every import of a module of the package, anywhere in the package's modules."""
    for path in sorted(package.rglob("*.py")):
        module = _module_name(path, package)
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))

        def visit(node: ast.AST, type_only: bool, lazy: bool,
                  module: str = module, is_package: bool = is_package) -> Iterator[Import]:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and _type_checking(child.test):
                    for item in child.body:
                        yield from visit_one(item, True, lazy, module, is_package)
                    for item in child.orelse:
                        yield from visit_one(item, type_only, lazy, module, is_package)
                else:
                    yield from visit_one(child, type_only, lazy, module, is_package)

        def visit_one(child: ast.AST, type_only: bool, lazy: bool, module: str,
                      is_package: bool) -> Iterator[Import]:
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                lazy = True
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".")
                    if not is_package:
                        base = base[:-1]
                    base = base[:len(base) - (child.level - 1)]
                    source = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    source = child.module or ""
                if source == "incentives" or source.startswith("incentives."):
                    plain = []
                    for alias in child.names:
                        sub = f"{source}.{alias.name}"
                        if _is_module(sub, package):  # ``from . import plan``: the module
                            yield Import(module, sub, (), child.lineno, type_only, lazy)
                        else:
                            plain.append(alias.name)
                    if plain:
                        yield Import(module, source, tuple(plain), child.lineno, type_only,
                                     lazy)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == "incentives" or alias.name.startswith("incentives."):
                        yield Import(module, alias.name, (), child.lineno, type_only, lazy)
            yield from visit(child, type_only, lazy, module, is_package)

        yield from visit(tree, False, False)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def _temporary(entry: str) -> bool:
    """Whether the entry's line in pyproject.toml is marked TEMPORARY."""
    for line in PYPROJECT.read_text(encoding="utf-8").splitlines():
        if f'"{entry}"' in line:
            return "TEMPORARY" in line
    raise AssertionError(f"{entry!r} not found in pyproject.toml")


# ------------------------------------------------------------------ the scanner itself


def test_the_scanner_sees_lazy_type_only_and_submodule_imports() -> None:
    found = {(i.module, i.target): i for i in imports()}
    kernel = found["incentives.policies.tiers", "incentives.kernel"]
    assert kernel.type_only
    assert kernel.names == ("KernelWriter",)
    lazy = found["incentives.plan", "incentives.engine"]  # Plan.compile
    assert lazy.lazy
    assert not lazy.type_only
    assert found["incentives.__main__", "incentives.cli"].names == ("entry",)
    assert ("incentives", "incentives._startup") in found  # ``from . import _startup``


# ------------------------------------------------------------------ (a) private names


def private_imports(package: Path = PACKAGE) -> list[str]:
    """``from .x import _y`` of another module, and ``x._y`` on an imported module."""
    problems = [f"{i.module} line {i.line}: imports {n} from {i.target}"
                for i in imports(package) if i.target != i.module
                for n in i.names if _private(n)]
    for path in sorted(package.rglob("*.py")):
        module = _module_name(path, package)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {alias.asname or alias.name.split(".")[0]
                   for node in ast.walk(tree) if isinstance(node, ast.ImportFrom | ast.Import)
                   for alias in node.names
                   if (isinstance(node, ast.Import) and alias.name.startswith("incentives"))
                   or (isinstance(node, ast.ImportFrom) and node.level and not node.module)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in modules and _private(node.attr)):
                problems.append(f"{module} line {node.lineno}: uses "
                                f"{node.value.id}.{node.attr}")
    return problems


def test_no_module_imports_a_private_name_of_another() -> None:
    assert private_imports() == []


def test_the_private_name_check_finds_each_kind(tmp_path: Path) -> None:
    copy = _copy_package(tmp_path)
    at = {name: _lines(copy / name) + 1 for name in ("kernel.py", "policies/cap.py",
                                                      "results.py")}
    _append(copy / "kernel.py", "from .engine import _groups  # noqa\n")
    _append(copy / "policies" / "cap.py", "from ..plan import _dump  # noqa\n")
    _append(copy / "results.py", "from . import plan as _p\n_x = _p._dump\n")
    assert private_imports(copy) == [
        f"incentives.kernel line {at['kernel.py']}: imports _groups from incentives.engine",
        f"incentives.policies.cap line {at['policies/cap.py']}: imports _dump from "
        "incentives.plan",
        f"incentives.results line {at['results.py'] + 1}: uses _p._dump",
    ]


# ------------------------------------------------------------------ (b) ignored imports


def test_every_ignored_upward_import_is_type_only() -> None:
    found = list(imports())
    entries = _contracts()["layers"]["ignore_imports"]
    assert isinstance(entries, list)
    assert entries, "the layers contract lists the upward type-only imports"
    for entry in entries:
        importer, _, imported = entry.partition(" -> ")
        matches = [i for i in found if i.module == importer and i.target == imported]
        assert matches, f"{entry}: no such import (remove the entry)"
        if _temporary(entry):
            assert importer == "incentives.explain", entry  # only the explain refactor's
            continue
        runtime = [i for i in matches if not i.type_only]
        assert runtime == [], (f"{entry} is listed as type-only but imported at run time "
                               f"(line {runtime[0].line if runtime else ''})")


#: The modules through which the core reaches an extra, and the extra.
DOORS = {"dataframes": "pandas", "sql": "sqlalchemy", "parquet": "pyarrow",
         "excel": "openpyxl"}


def test_the_doors_to_extras_are_lazy_and_guarded() -> None:
    entries = _contracts()["core-without-extras"]["ignore_imports"]
    assert sorted(entries) == sorted(f"incentives.{m} -> {x}" for m, x in DOORS.items())
    for module, extra in DOORS.items():
        tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        assert not any(extra in ast.unparse(n) for n in top), module
    tree = ast.parse((PACKAGE / "dataframes.py").read_text(encoding="utf-8"))
    run_frame = next(n for n in tree.body
                     if isinstance(n, ast.FunctionDef) and n.name == "run_frame")
    source = ast.unparse(run_frame)
    assert source.index("require(") < source.index("import pandas")
    # incentives.sources opens the data doors, each after require() named its extra
    tree = ast.parse((PACKAGE / "sources.py").read_text(encoding="utf-8"))
    doors = 0
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        text = ast.unparse(fn)
        for door in ("sql", "parquet", "excel"):
            at = text.find(f"from .{door} import")
            if fn.name == "_safe_url":  # sql.safe_url is plain text work, with no extra
                continue
            while at >= 0:
                doors += 1
                assert text.rfind(f"require('{door}'", 0, at) >= 0, (fn.name, door)
                at = text.find(f"from .{door} import", at + 1)
    assert doors >= 9


def test_every_module_is_placed_in_a_layer() -> None:
    layers = _contracts()["layers"]
    assert layers["exhaustive"] is True
    placed = {tail.strip().strip("()") for layer in layers["layers"]  # type: ignore[attr-defined]
              for tail in re.split(r"[|:]", layer)}
    children = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    children |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert children <= placed


# ------------------------------------------------------------------ (c) the contract fails


def _copy_package(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "incentives",
                    ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    return src / "incentives"


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _lint(copy: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the copy (its pyproject.toml; the copy first on the path)."""
    project = copy.parents[1]
    env = {**os.environ, "PYTHONPATH": str(copy.parent)}
    return subprocess.run(
        [sys.executable, "-c",
         "import importlib.util, sys\n"
         "origin = importlib.util.find_spec('incentives').origin\n"
         "assert origin.startswith(sys.argv[1]), origin  # the copy, not the checkout\n"
         "from importlinter.cli import lint_imports_command\n"
         "sys.argv[1:] = ['--no-logo', '--no-cache', 'pyproject.toml']\n"
         "lint_imports_command()\n",
         str(copy)],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False)


def _broken(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {m.group(1) for line in result.stdout.splitlines()
            if (m := re.fullmatch(r"(.+) BROKEN( \(.*\))?", line))}


def test_the_untouched_copy_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy_package(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("file", "line", "broken", "named"), [
    # the plan reaching for the auditors' toolkit again: up, and into an integration
    ("plan.py", "from .testing import declared  # noqa: F401\n", {LAYERS, CORE},
     "incentives.plan -> incentives.testing"),
    # the engine's own helpers taken by the kernel, at run time
    ("kernel.py", "from .engine import CompiledPlan  # noqa: F401\n", {LAYERS},
     "incentives.kernel -> incentives.engine"),
    # a policy reaching up into the ledger, lazily inside a function: still an import
    ("policies/floor.py",
     "\n\ndef _late() -> None:\n    from ..ledger import State  # noqa: F401\n", {LAYERS},
     "incentives.policies.floor -> incentives.ledger"),
    # the engine layer's own order: results are below the ledger that reads them
    ("results.py", "from .ledger import State  # noqa: F401\n", {LAYERS},
     "incentives.results -> incentives.ledger"),
    # a bottom helper importing a policy
    ("money.py", "from .policies.base import PolicyBase  # noqa: F401\n", {LAYERS},
     "incentives.money -> incentives.policies.base"),
    # an integration importing the command line
    ("streaming.py", "from .cli import period_option  # noqa: F401\n", {LAYERS},
     "incentives.streaming -> incentives.cli"),
])
def test_an_upward_import_breaks_the_contract(tmp_path: Path, file: str, line: str,
                                             broken: set[str], named: str) -> None:
    copy = _copy_package(tmp_path)
    _append(copy / file, line)
    result = _lint(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert _broken(result) == broken
    assert named in result.stdout


def test_an_unplaced_module_breaks_the_contract(tmp_path: Path) -> None:
    copy = _copy_package(tmp_path)
    (copy / "newcomer.py").write_text('"""Not placed in any layer."""\n', encoding="utf-8")
    result = _lint(copy)
    assert result.returncode == 1
    assert _broken(result) == {LAYERS}
    assert "incentives.newcomer" in result.stdout
