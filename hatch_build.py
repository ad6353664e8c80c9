"""Build hook: compile the gettext catalogues (``.po``) to ``.mo`` with Babel.

Runs for the wheel and for the editable install (``pip install -e .``). The
``.mo`` files are written next to their ``.po`` under ``src/incentives/locale``
(the editable install reads ``src`` directly); they are git-ignored and put in
the wheel as artifacts (``[tool.hatch.build.targets.wheel]`` in pyproject.toml).
A file is rewritten only when its content changes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LOCALE = Path("src", "incentives", "locale")


def compile_catalogues(locale: Path) -> list[Path]:
    """Compile every ``<lang>/LC_MESSAGES/*.po`` under ``locale``; the ``.mo`` files written."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    compiled = []
    for po in sorted(locale.glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as f:
            catalog = read_po(f, domain=po.stem)
        errors = [(message.id, error) for message, error_list in catalog.check()
                  for error in error_list]
        if errors:
            raise ValueError(f"{po}: {errors}")
        buf = io.BytesIO()
        write_mo(buf, catalog, use_fuzzy=False)
        mo = po.with_suffix(".mo")
        if not mo.is_file() or mo.read_bytes() != buf.getvalue():
            mo.write_bytes(buf.getvalue())
        compiled.append(mo)
    return compiled


class CataloguesHook(BuildHookInterface):  # type: ignore[misc]
    """Compile the catalogues before the wheel (or the editable wheel) is built."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return  # the sdist ships the .po sources; its wheel compiles them
        compile_catalogues(Path(self.root) / LOCALE)

    def clean(self, versions: list[str]) -> None:
        for mo in (Path(self.root) / LOCALE).glob("*/LC_MESSAGES/*.mo"):
            mo.unlink()
