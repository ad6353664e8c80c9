"""Build hook: compile the gettext catalogues (``.po``) to ``.mo`` with Babel.

Runs for the wheel and for the editable install (``pip install -e .``). The
``.mo`` files are written next to their ``.po`` under ``src/incentives/locale``
(the editable install reads ``src`` directly); they are git-ignored and put in
the wheel as artifacts (``[tool.hatch.build.targets.wheel]`` in pyproject.toml).
A file is rewritten only when its content changes.
"""

from __future__ import annotations

import io
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # compile_catalogues alone (the tests import it), without hatchling
    BuildHookInterface = object

LOCALE = Path("src", "incentives", "locale")
#: the date a compiled catalogue's header carries when its source names none
SOURCE_DATE = datetime.fromtimestamp(int(os.environ.get("SOURCE_DATE_EPOCH", "0")), timezone.utc)


def compile_catalogues(locale: Path) -> list[Path]:
    """Compile every ``<lang>/LC_MESSAGES/*.po`` under ``locale``; the ``.mo`` files written."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    compiled = []
    for po in sorted(locale.glob("*/LC_MESSAGES/*.po")):
        source = po.read_bytes()
        catalog = read_po(io.BytesIO(source), domain=po.stem)
        # the same .mo from the same .po: no build time in its header (Babel's default)
        if b'"POT-Creation-Date:' not in source:
            catalog.creation_date = SOURCE_DATE
        if b'"PO-Revision-Date:' not in source:
            catalog.revision_date = SOURCE_DATE
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


class CataloguesHook(BuildHookInterface):  # type: ignore[misc,valid-type]
    """Compile the catalogues before the wheel (or the editable wheel) is built."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return  # the sdist ships the .po sources; its wheel compiles them
        compile_catalogues(Path(self.root) / LOCALE)

    def clean(self, versions: list[str]) -> None:
        for mo in (Path(self.root) / LOCALE).glob("*/LC_MESSAGES/*.mo"):
            mo.unlink()
