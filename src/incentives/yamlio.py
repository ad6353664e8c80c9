"""YAML in and out, safely, exactly, and with line numbers.

Plans are loaded with PyYAML's *safe* composer only; this module then builds
the Python data itself so that

- every float-looking scalar becomes an exact :class:`~decimal.Decimal`
  (``0.05`` is five hundredths, never a binary float);
- numbers are YAML 1.2 numbers (``1e5`` is 100000) in range
  (:func:`incentives.money.range_problem`, checked before any arithmetic); the
  YAML 1.1 forms readers disagree on (``0x1F``, ``0o17``, ``017``, ``10:00``,
  ``1_000``, ``.inf``) are refused with the line and a suggestion;
- nodes and nesting are counted while the document is composed (on libyaml's
  parser when PyYAML has it), so a document past :data:`MAX_NODES` is refused
  after reading that many nodes, not after building them all;
- every node's line is remembered by its path inside the document, so an
  error can say ``plan.yaml:41 policies[2].tiers[1].rate``;
- aliases are counted as they expand, so a "billion laughs" document is
  refused (:class:`~incentives.errors.PlanLimitError`) instead of eating memory;
- duplicate keys are errors, not silently last-one-wins.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import yaml

from .errors import PlanError, PlanLimitError
from .money import MAX_NUMBER_TEXT, MAX_PLACES, plain, range_problem, short

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_NUMBER_DIGITS",
    "MAX_SIGNIFICANT",
    "MAX_TEXT",
    "LineMap",
    "dump_yaml",
    "load_yaml",
]

#: The most nodes a plan document may expand to (aliases included).
MAX_NODES = 50_000
#: The largest plan text accepted, in characters.
MAX_TEXT = 2_000_000
#: The deepest nesting accepted.
MAX_DEPTH = 60
#: The most digits before the decimal point a number in a plan may have
#: (the same as :data:`incentives.money.MAX_DIGITS` for records).
MAX_NUMBER_DIGITS = 18
#: The most significant digits a number in a plan may have (the arithmetic's precision).
MAX_SIGNIFICANT = 34

Path = tuple[str | int, ...]
LineMap = dict[Path, int]

_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
# YAML 1.2 (core schema) numbers, the only number forms a plan may use
_DEC_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)", re.ASCII)
_DEC_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?", re.ASCII)
# YAML 1.1 forms read differently by different readers: refused, with what they mean
# (compiled the first time a plan holds a value that is none of YAML 1.2's numbers)
_OTHER_FORMS: tuple[tuple[str, str], ...] = (
    (r"[-+]?0[xX][0-9a-fA-F_]*", "a hexadecimal number"),
    (r"[-+]?0[oO][0-7_]*", "an octal number"),
    (r"[-+]?0[bB][01_]*", "a binary number"),
    (r"[-+]?0[0-9_]+", "a number with a leading zero (octal in YAML 1.1)"),
    (r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?",
     "a base-60 (sexagesimal) number in YAML 1.1"),
)
_LEADING_ZERO = re.compile(r"[-+]?0[0-9]+")
_SPECIAL = r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
# plain text that YAML 1.2 would read as a number
_NUMBERISH = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)"
                        r"(?:[eE][-+]?[0-9]+)?|[-+]?0[oO][0-7_]*", re.ASCII)
# what PyYAML's reader refuses (libyaml refuses it too, but without saying where)
_NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
#: how much of an offending value a message quotes
_QUOTE = 40


class _Builder:
    def __init__(self, file: str | None) -> None:
        self.file = file
        self.lines: LineMap = {}
        self.count = 0
        self.constructor = yaml.SafeLoader("")

    def fail(self, message: str, node: yaml.Node, path: Path, *,
             suggestion: str | None = None) -> PlanError:
        return PlanError(message, file=self.file, line=node.start_mark.line + 1, path=path,
                         suggestion=suggestion)

    def _too_large(self, node: yaml.Node, path: Path, why: str = "is too large") -> PlanLimitError:
        value = node.value if isinstance(node.value, str) else "?"
        return PlanLimitError(
            f"number {short(value, _QUOTE)} {why} (at most {MAX_NUMBER_DIGITS} digits before "
            f"the point, the first digit at most {MAX_PLACES} places after it, "
            f"{MAX_SIGNIFICANT} significant digits)",
            file=self.file, line=node.start_mark.line + 1, path=path)

    def _magnitude(self, value: Decimal, node: yaml.Node, path: Path) -> Decimal:
        """``value`` when in range; checked before any arithmetic on it."""
        problem = range_problem(value)
        if problem is not None:
            raise self._too_large(node, path, "is too small" if "small" in problem
                                  or "after the point" in problem else "is too large")
        if len(value.as_tuple().digits) > MAX_SIGNIFICANT:
            raise self._too_large(node, path)
        return plain(value)

    def _number(self, node: yaml.ScalarNode, path: Path) -> Any:
        """A scalar YAML reads as a number (or one written like a YAML 1.2 number):
        an int or an exact Decimal, or a PlanError for a form read differently by
        YAML 1.1 and 1.2 readers (``0x1F``, ``017``, ``10:00``, ``1_000``)."""
        text = node.value
        if _DEC_INT.fullmatch(text):
            if len(text.lstrip("+-")) > MAX_NUMBER_DIGITS:
                raise self._too_large(node, path)
            return int(text)
        if _DEC_FLOAT.fullmatch(text) and not _LEADING_ZERO.fullmatch(text):
            if len(text) > MAX_NUMBER_TEXT:
                raise self._too_large(node, path)
            return self._magnitude(Decimal(text), node, path)
        if re.fullmatch(_SPECIAL, text):
            raise self.fail(f"{text} is not a finite number", node, path,
                            suggestion="write a number, or quote it if text is meant")
        if "_" in text and (_DEC_FLOAT.fullmatch(text.replace("_", ""))):
            raise self.fail(f"{short(text, _QUOTE)} has a digit separator '_'", node, path,
                            suggestion=f"write {short(text.replace('_', ''), _QUOTE)}, or "
                                       "quote it if text is meant")
        for pattern, what in _OTHER_FORMS:
            if re.fullmatch(pattern, text):
                raise self.fail(
                    f"{short(text, _QUOTE)} is {what}, which YAML readers read differently",
                    node, path, suggestion="write the number in decimal, or quote it if "
                                           "text is meant")
        raise self.fail(f"cannot read value {short(text, _QUOTE)!r} as a number", node, path)

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise PlanLimitError(
                f"the document expands to more than {MAX_NODES} nodes "
                "(are aliases nested to multiply it?)",
                file=self.file, line=node.start_mark.line + 1, path=path,
            )
        if len(path) > MAX_DEPTH:
            raise PlanLimitError(f"nested more than {MAX_DEPTH} levels deep",
                                 file=self.file, line=node.start_mark.line + 1, path=path)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_TAGS:
            raise self.fail(f"the tag {node.tag!r} is not allowed in a plan", node, path)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                value = self.build(value_node, path)
                sources = value if isinstance(value, list) else [value]
                for src in sources:
                    if not isinstance(src, dict):
                        raise self.fail("'<<' merges only mappings", key_node, path)
                    for k, v in src.items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail("mapping keys must be plain text", key_node, path)
            key = self._scalar(key_node, path)
            if isinstance(key, Decimal):
                key = key_node.value
            if not isinstance(key, (str, int)):
                key = str(key_node.value)
            if key in out:
                raise self.fail(f"duplicate key {key!r}", key_node, (*path, key))
            # an error about a key points at the key's line (a block value starts below it)
            self.lines.setdefault((*path, key), key_node.start_mark.line + 1)
            out[key] = self.build(value_node, (*path, key))
        for k, v in merged.items():
            out.setdefault(k, v)
        return out

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        if node.tag in (_FLOAT_TAG, _INT_TAG):
            return self._number(node, path)
        if node.tag == _BOOL_TAG and node.value.lower() not in ("true", "false"):
            return node.value  # yes, no, on, off: text in YAML 1.2 (a key `on:` is "on")
        if node.tag == _STR_TAG and not node.style and _NUMBERISH.fullmatch(node.value):
            # plain text YAML 1.1 leaves as text but YAML 1.2 reads as a number (1e5, 0o17)
            return self._number(node, path)
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise self.fail(f"cannot read value {short(node.value, _QUOTE)!r}: {problem}",
                            node, path) from None
        except (ValueError, TypeError, OverflowError) as exc:
            raise self.fail(f"cannot read value {short(node.value, _QUOTE)!r}: {exc}", node,
                            path) from None
        if isinstance(value, int) and not isinstance(value, bool) and (
                abs(value) >= 10**MAX_NUMBER_DIGITS):
            raise self._too_large(node, path)
        if isinstance(value, str) and not value.isprintable():
            self._check_text(value, node, path)
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, float):  # pragma: no cover - floats are handled above
            return Decimal(node.value)
        return value


    def _check_text(self, value: str, node: yaml.ScalarNode, path: Path) -> None:
        """Refuse a control character in the plan's text: a label, a name or an id is
        one line of printable text; longer text (a description, a formula) may also
        break lines and hold tabs."""
        one_line = bool(path) and path[-1] in _ONE_LINE_KEYS
        if not one_line and value.replace("\n", "").replace("\r", "").replace(
                "\t", "").isprintable():
            return  # line breaks and tabs, which longer text may hold, and nothing else
        from .errors import CONTROL_CHARACTERS  # (every control character is unprintable)

        for found in CONTROL_CHARACTERS.finditer(value):
            if found.group() in "\t\n\r" and not one_line:
                continue
            shown = short(value, _QUOTE).encode("unicode_escape").decode("ascii")
            rule = ("a label, a name or an id is one line of printable text" if one_line
                    else "text in a plan may not hold control characters")
            raise self.fail(f"control character U+{ord(found.group()):04X} in '{shown}': "
                            f"{rule}", node, path)


#: Keys whose text is shown on one line (tables, statements, CSV headers).
_ONE_LINE_KEYS = frozenset(("label", "name", "id", "title", "version", "currency", "column"))


class _Counting(yaml.composer.Composer):
    """PyYAML's composer, refusing a document past :data:`MAX_NODES` nodes or
    :data:`MAX_DEPTH` levels *while* it composes it (so a 600,000-item list is
    refused after reading its first 50,000 items, not after building them all)."""

    file: str | None
    nodes: int
    depth: int

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]
        # an alias counts once here (it stands for one node at least); what it expands
        # to is counted by _check_expansion
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise PlanLimitError(
                f"the plan has more than {MAX_NODES} nodes (values, lists and mappings)",
                file=self.file, line=event.start_mark.line + 1)
        self.depth += 1
        if self.depth > MAX_DEPTH + 1:  # the document's own node is no level
            raise PlanLimitError(f"nested more than {MAX_DEPTH} levels deep",
                                 file=self.file, line=event.start_mark.line + 1)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _PyLoader(_Counting, yaml.SafeLoader):
    """The composer above on PyYAML's pure-Python reader, scanner and parser."""

    def __init__(self, text: str, file: str | None) -> None:
        yaml.SafeLoader.__init__(self, text)
        self.file, self.nodes, self.depth = file, 0, 0


_CParser: Any
try:
    import yaml.cyaml
    _CParser = getattr(yaml.cyaml, "CParser", None)
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = None

if _CParser is not None:
    class _CLoader(_Counting, _CParser, yaml.constructor.SafeConstructor,  # type: ignore[misc]
                   yaml.resolver.Resolver):
        """The composer above on libyaml's parser (events made in C: some twenty
        times faster), resolving tags as PyYAML's safe loader does."""

        def __init__(self, text: str, file: str | None) -> None:
            _CParser.__init__(self, text)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self.file, self.nodes, self.depth = file, 0, 0

    _Loader: Any = _CLoader
else:  # pragma: no cover - PyYAML built without libyaml
    _Loader = _PyLoader


# a bracket, or a quoted string or a comment (whose brackets do not nest anything)
_BRACKETS = r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|(?:^|(?<=\s))#[^\n]*|[\[\]{}]"""


def _check_flow_depth(text: str, file: str | None) -> None:
    """Refuse ``[[[[...`` nested past :data:`MAX_DEPTH` before PyYAML parses it (its
    parser slows down with the square of the nesting)."""
    depth = 0
    for m in re.finditer(_BRACKETS, text, re.MULTILINE):
        if len(m.group()) > 1 or m.group() in "\"'#":
            continue
        if m.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, m.start()) + 1
                raise PlanLimitError(f"nested more than {MAX_DEPTH} levels deep",
                                     file=file, line=line)
        elif depth:
            depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_expansion(root: yaml.Node, file: str | None) -> None:
    """Refuse a document whose aliases expand it past :data:`MAX_NODES`, or refer to
    themselves, before building anything: counted once per distinct node, so a
    "billion laughs" document costs what its text costs."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            size[key] = min(1 + sum(size[id(c)] for c in _children(node)), MAX_NODES + 1)
            if key == id(root) and size[key] > MAX_NODES:
                break
            continue
        if key in size:
            continue
        open_.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_:
                raise PlanError("an alias refers to the list or mapping it is in",
                                file=file, line=child.start_mark.line + 1)
            if id(child) not in size:
                stack.append((child, False))
    if size.get(id(root), 0) > MAX_NODES:
        raise PlanLimitError(
            f"the document expands to more than {MAX_NODES} nodes "
            "(are aliases nested to multiply it?)", file=file, line=root.start_mark.line + 1)


def load_yaml(text: str, *, file: str | None = None) -> tuple[Any, LineMap]:
    """Parse one YAML document safely; return the data and its line map."""
    if len(text) > MAX_TEXT:
        raise PlanLimitError(f"plan text too large ({len(text)} characters, at most {MAX_TEXT})",
                             file=file)
    if _Loader is _PyLoader:  # libyaml's parser is not slowed by nesting; the composer
        _check_flow_depth(text, file)  # refuses it past MAX_DEPTH
    bad = _NON_PRINTABLE.search(text)
    if bad is not None:  # a character YAML does not accept (libyaml would not say where)
        raise PlanError(f"YAML: unacceptable character #x{ord(bad.group()):04x}: special "
                        "characters are not allowed", file=file,
                        line=text.count("\n", 0, bad.start()) + 1)
    try:
        loader = _Loader(text, file)
    except yaml.YAMLError as exc:  # pragma: no cover - the characters are checked above
        raise PlanError(f"YAML: {str(exc).splitlines()[0]}", file=file) from None
    try:
        node = loader.get_single_node()
    except RecursionError:
        raise PlanLimitError(f"nested more than {MAX_DEPTH} levels deep", file=file) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "malformed YAML"
        if "nesting depth" in problem:  # libyaml's own limit, far above ours
            raise PlanLimitError(f"nested more than {MAX_DEPTH} levels deep", file=file,
                                 line=line) from None
        raise PlanError(f"YAML syntax: {problem}", file=file, line=line,
                        suggestion="check the indentation and the ':' after each key") from None
    except yaml.YAMLError as exc:
        raise PlanError(f"YAML syntax: {str(exc).splitlines()[0]}", file=file) from None
    finally:
        loader.dispose()
    if node is None:
        raise PlanError("the plan is empty", file=file)
    _check_expansion(node, file)
    builder = _Builder(file)
    data = builder.build(node, ())
    return data, builder.lines


class _Dumper(yaml.SafeDumper):
    pass


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    text = format(value, "f")
    tag = _FLOAT_TAG if "." in text else _INT_TAG
    return dumper.represent_scalar(tag, text)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if any(ch in "\x85\u2028\u2029" or (not ch.isprintable() and ch != "\n") for ch in value):
        style: str | None = '"'  # escaped, so line breaks YAML knows survive a round trip
    elif "\n" in value:
        style = "|"
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(Decimal, _represent_decimal)
_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    """Dump plain data (dicts, lists, Decimals, dates) to YAML text that
    :func:`load_yaml` reads back to equal data."""
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                     default_flow_style=False, width=100)
