"""Statement phrases in gettext catalogues: one per language, found by looking.

A statement's phrases are gettext messages whose msgid is the English phrase
(placeholders such as ``{lo}`` included). Each language is a catalogue,
``locale/<lang>/LC_MESSAGES/incentives.po`` in this package, compiled to
``incentives.mo`` when the package is built or installed (``hatch_build.py``).
The languages are the catalogues present: a third language is a new catalogue,
not a code change.

>>> _ = translation("zh")
>>> _("Pay statement")
'薪酬对账单'
>>> translation("en")("slice {lo} to {hi}").format(lo="0", hi="30,000")
'slice 0 to 30,000'
>>> translation("zh")("a phrase no catalogue has")  # falls back to the msgid
'a phrase no catalogue has'

Free text that policies write into a line's details (English) is worded for a
statement by :func:`reword`; its sentences are catalogue entries of context
``"free text"`` whose msgid is the English sentence with ``{0}``, ``{1}``
standing for one word each (``{0!s}``: any text, itself worded again):

>>> reword("score 40 is below the gate 60", "zh")
'总分 40 低于门槛 60'
>>> reword("score 40 is below the gate 60", "en")
'score 40 is below the gate 60'

A policy that ships outside this package adds its own phrases with
:func:`add_catalogue` (a folder of compiled catalogues laid out as this
package's ``locale`` folder) or :func:`add_messages` (a mapping).
"""

from __future__ import annotations

import gettext
import os
import re
import string
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import IO

from .errors import UsageError

__all__ = ["DOMAIN", "FREE_TEXT", "N_", "SOURCE_LANG", "TIE_RULE", "add_catalogue",
           "add_messages", "catalogued", "check_placeholders", "languages", "remove_catalogue", "reword",
           "sentence_pattern", "translation"]

#: the gettext domain: catalogues are ``<lang>/LC_MESSAGES/incentives.mo``
DOMAIN = "incentives"
#: the language msgids are written in; a phrase no catalogue has shows as its msgid
SOURCE_LANG = "en"
#: msgctxt of the sentences policies write in details (see :func:`reword`)
FREE_TEXT = "free text"
#: msgctxt of an honour's tie rule names (``include``, ``exclude``, ``keys``)
TIE_RULE = "tie rule"

_CONTEXT_SEP = "\x04"  # gettext's separator of msgctxt and msgid in a compiled catalogue


def N_(msgid: str) -> str:
    """Mark a phrase for the catalogues where it is written, translated later: ``msgid``."""
    return msgid


# ------------------------------------------------------------------ catalogues
class _Compiled(gettext.GNUTranslations):
    """A compiled catalogue, read by the standard library, that can list its messages."""

    def messages(self) -> dict[str, str]:
        """``msgid`` (``msgctxt\\x04msgid`` under a context) to its translation."""
        # GNUTranslations keeps what it parsed in ``_catalog`` (its storage since Python 2);
        # the header is the empty msgid, plural forms are keyed by tuples: neither is a phrase.
        parsed: dict[object, str] = vars(self)["_catalog"]
        return {k: v for k, v in parsed.items() if isinstance(k, str) and k and v}


def _read(fp: IO[bytes], where: str = "a catalogue") -> dict[str, str]:
    """The messages of a compiled catalogue; a UsageError naming it when it is not one
    (truncated, corrupt, an unknown charset) or a translation's placeholders are not its
    msgid's."""
    try:
        messages = _Compiled(fp).messages()
    except (OSError, LookupError, UnicodeDecodeError, ValueError, struct.error) as exc:
        raise UsageError(f"{where}: not a compiled gettext catalogue ({exc})") from None
    for key, text in messages.items():
        check_placeholders(key.rpartition(_CONTEXT_SEP)[2], text, where)
    return messages


def _fields(text: str, where: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise UsageError(f"{where}: {text!r} is not a phrase ({exc})") from None
    return {name for _, name, _, _ in parsed if name is not None}


def check_placeholders(msgid: str, text: str, where: str = "a phrase") -> None:
    """Refuse a translation whose placeholders are not among its msgid's, or that reach
    into a value (``{lo.__class__}``, ``{0[1]}``): a UsageError naming ``where``.

    >>> check_placeholders("slice {lo} to {hi}", "分段 {lo} 至 {hi}")
    >>> check_placeholders("slice {lo} to {hi}", "{lo.__class__}")
    Traceback (most recent call last):
    ...
    incentives.errors.UsageError: a phrase: the translation of 'slice {lo} to {hi}' uses {lo.__class__}, which its msgid does not have
    """
    allowed = _fields(msgid, where)
    for name in sorted(_fields(text, where) - allowed):
        raise UsageError(f"{where}: the translation of {msgid!r} uses {{{name}}}, which its "
                         "msgid does not have")


def _package_locale() -> Traversable:
    return resources.files(__package__ or "incentives").joinpath("locale")


def _folder_languages(folder: Traversable, domain: str, where: str) -> dict[str, Traversable]:
    """The compiled catalogues of a locale folder, by language."""
    found: dict[str, Traversable] = {}
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        messages = entry.joinpath("LC_MESSAGES")
        if not entry.is_dir() or not messages.is_dir():
            continue
        mo, po = messages.joinpath(f"{domain}.mo"), messages.joinpath(f"{domain}.po")
        if mo.is_file():
            found[entry.name] = mo
        elif po.is_file():
            raise UsageError(
                f"the {entry.name!r} catalogue of {where} is not compiled ({domain}.po has no "
                f"{domain}.mo): reinstall the package (pip install -e .), or compile it "
                f"(pybabel compile -d <folder> -D {domain})")
    return found


@dataclass(frozen=True)
class _Added:
    folder: Path
    domain: str


_lock = threading.RLock()
_added_folders: list[_Added] = []
_added_messages: dict[str, dict[str, str]] = {}
_found: dict[str, list[Traversable]] | None = None
#: language -> every message, merged; updated in place so the functions handed out stay live
_tables: dict[str, dict[str, str]] = {}
_functions: dict[tuple[str, str | None], Callable[[str], str]] = {}
_rewordings: dict[str, _Rewording] = {}


def _catalogues() -> dict[str, list[Traversable]]:
    """Every language's compiled catalogues: the package's first, then the added ones."""
    global _found
    with _lock:
        if _found is None:
            found: dict[str, list[Traversable]] = {}
            for lang, mo in _folder_languages(_package_locale(), DOMAIN, "the package").items():
                found.setdefault(lang, []).append(mo)
            for added in _added_folders:
                where = str(added.folder)
                for lang, mo in _folder_languages(added.folder, added.domain, where).items():
                    found.setdefault(lang, []).append(mo)
            _found = found
        return _found


def languages() -> tuple[str, ...]:
    """The languages a statement can be worded in: English first, then by code.

    >>> languages()[:2]
    ('en', 'zh')
    """
    found = _catalogues()
    return tuple(sorted(found, key=lambda lang: (lang != SOURCE_LANG, lang)))


def _check(lang: str) -> None:
    if not isinstance(lang, str) or lang not in _catalogues():
        shown = repr(lang) if len(repr(lang)) <= 40 else repr(lang)[:40] + "…"
        raise UsageError(f"unknown language {shown}; choose one of: {', '.join(languages())}")


def _build(lang: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for mo in _catalogues().get(lang, []):
        with mo.open("rb") as fp:
            merged.update(_read(fp, str(mo)))
    merged.update(_added_messages.get(lang, {}))
    return merged


def _table(lang: str) -> dict[str, str]:
    with _lock:
        table = _tables.get(lang)
        if table is None:
            _check(lang)
            table = _tables[lang] = _build(lang)
        return table


def _refresh() -> None:
    """Forget what was found and read again (after a catalogue is added or removed)."""
    global _found
    with _lock:
        _found = None
        _rewordings.clear()
        known = _catalogues()
        for lang, table in list(_tables.items()):
            fresh = _build(lang) if lang in known else {}
            for gone in table.keys() - fresh.keys():
                del table[gone]
            table.update(fresh)  # in place: a function handed out earlier reads the new phrases
            if lang not in known:
                del _tables[lang]
                for key in [key for key in _functions if key[0] == lang]:
                    del _functions[key]


def translation(lang: str, context: str | None = None) -> Callable[[str], str]:
    """The gettext function of a language: msgid -> its translation (else the msgid).

    ``context`` looks up the messages of that msgctxt (:data:`FREE_TEXT`,
    :data:`TIE_RULE`, or a policy's own). The function is cached and stays
    current when catalogues are added later.

    >>> translation("zh", TIE_RULE)("include")
    '并列者全部入选'
    >>> translation("xx")
    Traceback (most recent call last):
    ...
    incentives.errors.UsageError: unknown language 'xx'; choose one of: en, zh
    """
    if not isinstance(lang, str):
        _check(lang)
    key = (lang, context)
    found = _functions.get(key)
    if found is not None:
        return found
    with _lock:
        table = _table(lang)
        if context is None:
            def function(message: str, /) -> str:
                return table.get(message, message)
        else:
            prefix = context + _CONTEXT_SEP

            def function(message: str, /) -> str:
                return table.get(prefix + message, message)
        _functions[key] = function
        return function


# --------------------------------------------------------------- third parties
def add_catalogue(path: str | os.PathLike[str], domain: str = DOMAIN) -> None:
    """Add a folder of compiled catalogues: ``<path>/<lang>/LC_MESSAGES/<domain>.mo``.

    A policy shipped outside this package adds its phrases so; a language
    whose catalogue is there becomes one of :func:`languages`. On a msgid both
    have, the catalogue added last wins.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise UsageError(f"no catalogue folder {str(folder)!r}")
    for lang, mo in _folder_languages(folder, domain, str(folder)).items():
        with mo.open("rb") as fp:  # refuse an uncompiled, corrupt or unsafe one now
            _read(fp, f"the {lang!r} catalogue of {folder}")
    with _lock:
        added = _Added(folder.resolve(), domain)
        if added not in _added_folders:
            _added_folders.append(added)
        _refresh()


def remove_catalogue(path: str | os.PathLike[str], domain: str = DOMAIN) -> None:
    """Take back a folder added by :func:`add_catalogue` (nothing when it was not added)."""
    with _lock:
        added = _Added(Path(path).resolve(), domain)
        if added in _added_folders:
            _added_folders.remove(added)
            _refresh()


def add_messages(lang: str, messages: Mapping[str, str], context: str | None = None) -> None:
    """Add phrases to a language: ``{msgid: translation}``, under ``context`` if given.

    The language must have a catalogue (a new language is a catalogue). The
    phrases win over the catalogues' on a msgid both have.

    >>> add_messages("zh", {"{n} visits": "拜访 {n} 次"})
    >>> translation("zh")("{n} visits").format(n=3)
    '拜访 3 次'
    """
    _check(lang)
    prefix = "" if context is None else context + _CONTEXT_SEP
    for msgid, text in messages.items():
        if not msgid or not isinstance(msgid, str) or not isinstance(text, str):
            raise UsageError(f"a phrase is a non-empty msgid and its text, not {msgid!r}: {text!r}")
        if context == FREE_TEXT:
            sentence_pattern(msgid)  # refuse a sentence reword could not match
        if _CONTEXT_SEP in msgid:
            raise UsageError(f"a msgid cannot hold gettext's context separator: {msgid!r}")
        check_placeholders(msgid, text, f"the {lang!r} phrase {msgid!r}")
    with _lock:
        _added_messages.setdefault(lang, {}).update(
            {prefix + msgid: text for msgid, text in messages.items() if text})
        _refresh()


# ------------------------------------------------------------------ free text
@dataclass(frozen=True)
class _Sentence:
    msgid: str
    pattern: re.Pattern[str]
    fields: tuple[int, ...]  # the placeholder numbers, one per group
    template: str


@dataclass(frozen=True)
class _Rewording:
    sentences: tuple[_Sentence, ...]
    exact: Mapping[str, str]


def sentence_pattern(msgid: str) -> tuple[re.Pattern[str], tuple[int, ...]]:
    """The regular expression of a free-text msgid, and the placeholder of each group.

    ``{0}`` is one word (``\\S+``), ``{0!s}`` any text (``.+``); the rest is
    literal, and the text must match whole (``^...$``).

    >>> pattern, fields = sentence_pattern("{1} of {0!s}")
    >>> pattern.match("3 of a b c").groups(), fields
    (('3', 'a b c'), (1, 0))
    """
    parts, fields = ["^"], []
    for literal, field, spec, conversion in string.Formatter().parse(msgid):
        parts.append(re.escape(literal))
        if field is None:
            continue
        if not field.isdigit() or spec or conversion not in (None, "s"):
            raise UsageError(f"free text {msgid!r}: a placeholder is {{0}} (one word) or "
                             f"{{0!s}} (any text), not {{{field}}}")
        fields.append(int(field))
        parts.append("(.+)" if conversion == "s" else r"(\S+)")
    parts.append("$")
    return re.compile("".join(parts)), tuple(fields)


def _literal_length(msgid: str) -> int:
    return sum(len(literal) for literal, *_ in string.Formatter().parse(msgid))


def _rewording(lang: str) -> _Rewording:
    found = _rewordings.get(lang)
    if found is not None:
        return found
    with _lock:
        prefix = FREE_TEXT + _CONTEXT_SEP
        own = _table(lang)
        msgids = {k[len(prefix):] for table in (_table(SOURCE_LANG), own) for k in table
                  if k.startswith(prefix)}
        sentences, exact = [], {}
        # the most literal sentence first, so a looser one never shadows it
        for msgid in sorted(msgids, key=lambda m: (-_literal_length(m), m)):
            template = own.get(prefix + msgid, msgid)
            pattern, fields = sentence_pattern(msgid)
            if fields:
                sentences.append(_Sentence(msgid, pattern, fields, template))
            else:
                exact[msgid] = template
        found = _rewordings[lang] = _Rewording(tuple(sentences), exact)
        return found


#: free text longer than this, or sentences nested deeper, are left as they are: the
#: policies' own sentences are short and nest twice at most, and a longer text (from a
#: hand-edited state file, say) must not cost quadratic time or exhaust the stack
MAX_REWORDED = 1000
MAX_NESTING = 6


def _reword(text: str, rules: _Rewording, depth: int = 0) -> str:
    if len(text) > MAX_REWORDED or depth > MAX_NESTING:
        return text
    for s in rules.sentences:
        m = s.pattern.match(text)
        if m:
            groups = m.groups()
            words = [_reword(g, rules, depth + 1) for g in groups]
            if s.template == s.msgid and words == list(groups):
                return text
            args = [""] * (max(s.fields) + 1)
            for field, word in zip(s.fields, words, strict=True):
                args[field] = word
            return s.template.format(*args)
    return rules.exact.get(text, text)


def reword(text: str, lang: str) -> str:
    """Free text from a policy's details, worded in ``lang`` (unchanged when not known).

    The sentences are the catalogues' messages of context :data:`FREE_TEXT`.
    Each placeholder's text is worded again, so sentences nest (up to
    :data:`MAX_NESTING` deep; a text longer than :data:`MAX_REWORDED` characters is
    left as it is):

    >>> reword("each at least 0.8 x mean not met: each at least 0.8 x mean needs k >= 2, "
    ...        "but max/min at most 3 needs k <= 1; k = 1 keeps the upper limits", "zh")
    '未满足每人至少为团队平均的 0.8 倍：每人至少为团队平均的 0.8 倍 要求 k >= 2，但 最高/最低至多 3 要求 k <= 1；k = 1 保证上限'
    """
    return _reword(text, _rewording(lang))


def catalogued(lang: str, context: str | None = None) -> frozenset[str]:
    """The msgids a language's catalogues translate (under ``context``, or without one)."""
    table = _table(lang)
    if context is None:
        return frozenset(k for k in table if _CONTEXT_SEP not in k)
    prefix = context + _CONTEXT_SEP
    return frozenset(k[len(prefix):] for k in table if k.startswith(prefix))
