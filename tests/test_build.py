"""The build passes on a new machine: the lock pins every dependency of every extra,
and CI installs from it into a brand-new virtual environment (issue 14)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")
requirements = pytest.importorskip("packaging.requirements")
markers = pytest.importorskip("packaging.markers")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, list[tuple[str, str]]]:
    """Each pinned package's versions, with the environment marker each holds under."""
    pins: dict[str, list[tuple[str, str]]] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith((" ", "#")):
            continue
        spec, _, marker = line.partition(";")
        name, _, version = spec.strip().partition("==")
        assert version, f"constraints.txt: {line!r} is not pinned with =="
        pins.setdefault(_norm(name), []).append((version.strip(), marker.strip()))
    return pins


def test_the_lock_pins_every_dependency_of_every_extra_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    pins = _pins()
    checked = 0
    for text in wanted:
        req = requirements.Requirement(text)
        if _norm(req.name) == "incentives":
            continue  # an extra naming another extra of this project
        assert _norm(req.name) in pins, (
            f"{req.name} is not in constraints.txt: refresh the lock (see README)")
        for version, marker in pins[_norm(req.name)]:
            if not marker or markers.Marker(marker).evaluate():
                assert req.specifier.contains(version, prereleases=True), (
                    f"constraints.txt pins {req.name}=={version}, outside {req.specifier}")
                checked += 1
    assert checked >= len(wanted) - 1


def test_ci_builds_a_new_environment_from_the_lock_and_runs_the_readme_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    check = (ROOT / "check.sh").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "-m venv" in ci
    assert "mktemp -d" in ci
    assert ci.rstrip().splitlines()[-1] == "bash check.sh"
    assert "```console\nbash check.sh\n```" in readme
    assert "-c constraints.txt" in check
    assert "-c constraints.txt -e . && incentives run" in readme
