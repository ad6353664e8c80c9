"""HTML pages from Jinja2 templates, which an HR team can restyle with its own folder.

Every HTML page the library writes (a statement, the notebook view of a result or a
run, the simulation report) is rendered from a template bundled in
``incentives/templates``. A folder of one's own (``templates=``, ``--templates DIR``)
overrides any template it holds; the bundled ones serve the rest. Templates are
rendered in Jinja2's sandbox (a template reaches only the values it is given, never
Python's internals), with autoescaping on (a payee id ``<script>`` prints as text) and
strict undefined variables (a misspelt name is an error, not an empty cell). Whatever
goes wrong in a template is one :class:`TemplateError` naming the file and line.
A template of one's own may extend a bundled one by the name ``bundled/NAME``
(``{% extends "bundled/statement.html.j2" %}``) and replace its blocks.

Jinja2 is imported only when a page is rendered.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["BUNDLED", "TEMPLATE_NAMES", "TemplateError", "check", "render"]

#: the folder of the bundled templates
BUNDLED = Path(__file__).resolve().with_name("templates")

#: the templates a folder may override
TEMPLATE_NAMES = ("statement.html.j2", "statement_fragment.html.j2", "run.html.j2",
                  "simulation_report.html.j2")

#: per folder, the environment made for the folder's files as they were (name, time)
_ENVIRONMENTS: dict[str, tuple[tuple[tuple[str, int], ...], Environment]] = {}


class TemplateError(UsageError):
    """A template folder that does not exist, or a template that cannot be read or
    rendered (a syntax error, an undefined variable, an access the sandbox refuses).
    The message names the file and, where there is one, the line."""


def _listing(folder: str, limit: int = 2000) -> tuple[tuple[str, int], ...]:
    """The files of ``folder`` (symbolic links to folders not followed), each with the
    time it last changed; at most ``limit`` of them (a template folder is small)."""
    found: list[tuple[str, int]] = []
    for top, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(top, name)
            with contextlib.suppress(OSError):
                found.append((path, os.stat(path).st_mtime_ns))
            if len(found) >= limit:
                return tuple(sorted(found))
    return tuple(sorted(found))


def _inside(folder: str) -> Any:
    """A Jinja2 loader of ``folder``'s templates that refuses a file whose real path is
    outside the folder (a symbolic link to another file, a linked folder): a template
    folder shows what is in it, never ``/etc/passwd`` or the process's environment."""
    import jinja2

    root = os.path.realpath(folder)

    class Inside(jinja2.FileSystemLoader):
        def get_source(self, environment: Any, template: str) -> Any:
            source, filename, uptodate = super().get_source(environment, template)
            real = os.path.realpath(filename)
            if os.path.commonpath([root, real]) != root or not os.path.isfile(real):
                raise TemplateError(f"template {filename}: a link to a file outside the "
                                    f"templates folder {folder} (refused)")
            return source, filename, uptodate

    return Inside(folder, encoding="utf-8")


def _environment(folder: str | Path | None) -> Environment:
    if folder is not None and not str(folder).strip():
        raise TemplateError("templates folder: an empty name (give the folder's path)")
    # the bundled templates' key cannot be a folder's: a folder's is its real path
    key = "" if folder is None else os.path.realpath(folder)
    if folder is not None and not Path(folder).is_dir():
        raise TemplateError(f"templates folder {folder}: "
                            + ("not a folder" if Path(folder).exists() else "no such folder"))
    # a file added to, removed from or changed in the folder is seen at the next page
    # (Jinja2's own check sees only changes to the file a template came from)
    files = () if folder is None else _listing(key)
    made = _ENVIRONMENTS.get(key)
    if made is not None and made[0] == files:
        return made[1]
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    bundled = jinja2.FileSystemLoader(str(BUNDLED), encoding="utf-8")
    loaders: list[jinja2.BaseLoader] = [bundled, jinja2.PrefixLoader({"bundled": bundled})]
    if folder is not None:  # the folder's own templates first, the bundled ones for the rest
        loaders.insert(0, _inside(key))
    # immutable: a template cannot change the lists and mappings it is given (the
    # simulation report's variants, written to report.md too)
    env = ImmutableSandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    _ENVIRONMENTS[key] = (files, env)
    return env


def _where(exc: BaseException, name: str) -> str:
    """The template file and line ``exc`` was raised at (Jinja2 rewrites a rendering
    error's traceback to point into the template)."""
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.filename or exc.name or name}, line {exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.endswith(".j2") or f.filename.startswith("<template")]
    if frames:
        return f"{frames[-1].filename}, line {frames[-1].lineno}"
    return name


def _unreadable(exc: UnicodeDecodeError | OSError, name: str) -> TemplateError:
    """A template file that cannot be read (not UTF-8 text, no permission), named."""
    path = getattr(exc, "filename", None)
    tb = exc.__traceback__
    while path is None and tb is not None:  # the file the loader was reading
        found = tb.tb_frame.f_locals.get("filename")
        if isinstance(found, str):
            path = found
        tb = tb.tb_next
    if isinstance(exc, UnicodeDecodeError):
        why = f"not UTF-8 text (byte {exc.start})"
    else:
        why = exc.strerror or str(exc)
    return TemplateError(f"template {path or name}: {why}")


def _message(exc: BaseException) -> str:
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"syntax error: {exc.message}"
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"no template {exc.name!r}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"refused by the sandbox: {exc}"
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined: {exc}"
    return f"{type(exc).__name__}: {exc}"


def check(name: str, folder: str | Path | None = None) -> None:
    """Load template ``name`` (from ``folder``, else bundled) and those it includes or
    extends as far as they can be found without rendering: a missing folder or a
    syntax error is a :class:`TemplateError` before any work is done."""
    import jinja2

    env = _environment(folder)
    try:
        env.get_template(name)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template {_where(exc, name)}: {_message(exc)}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise _unreadable(exc, name) from None
    except (SyntaxError, RecursionError, MemoryError) as exc:
        raise _too_deep(exc, name) from None


def _too_deep(exc: BaseException, name: str) -> TemplateError:
    """A template Python cannot compile or run: nested too deeply, or too large."""
    what = ("nested too deeply for Python to compile" if not isinstance(exc, MemoryError)
            else "too large for memory")
    return TemplateError(f"template {name} (or one it includes): {what}")


def render(name: str, context: Mapping[str, Any], folder: str | Path | None = None) -> str:
    """Template ``name`` rendered with ``context`` (``folder``'s own template if it has
    one, else the bundled one)."""
    import jinja2

    env = _environment(folder)
    try:
        return env.get_template(name).render(context)
    except TemplateError:  # a link out of the folder, refused by the loader
        raise
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template {_where(exc, name)}: {_message(exc)}") from None
    except (UnicodeDecodeError, OSError) as exc:  # a template (or one it includes) unread
        raise _unreadable(exc, name) from None
    except (SyntaxError, MemoryError) as exc:
        raise _too_deep(exc, name) from None
    except Exception as exc:  # an error a template's own expression raised ({{ 1 / 0 }})
        where = _where(exc, name)
        if where == name:
            if isinstance(exc, RecursionError):  # compiling a template nested too deeply
                raise _too_deep(exc, name) from None
            raise
        raise TemplateError(f"template {where}: {_message(exc)}") from None
