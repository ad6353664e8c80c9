"""Records files as people have them, and files that are not records at all.

- Encodings: a GBK, GB18030, UTF-8-with-BOM, UTF-16 or UTF-32 file gives the same
  JSON, byte for byte, as its UTF-8 twin, through Python and the command line,
  with the encoding named (``encoding=``, ``--encoding``) or detected.
- Delimiters: a semicolon, tab or pipe CSV gives the same JSON as its comma twin,
  named (``--delimiter``) or sniffed from the header.
- Blank and whitespace-only lines are not records.
- A file that is not text in its encoding, that never ends (``/dev/zero``, a FIFO
  whose writer never stops), that is too large, or whose CSV header names a
  column twice, is refused with one clear error (exit 2), never a traceback.
- Records are unambiguous: a JSON key named twice, and control characters in ids
  and text, are record errors naming the payee and the field; no control
  character ever reaches the terminal raw.

Fixtures are written by the tests from the UTF-8 twin's text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from incentives import UsageError, load_plan
from incentives.errors import RecordError
from incentives.fileio import read_bytes_capped
from incentives.records import (
    DETECT_BYTES,
    MAX_ERRORS,
    MAX_FILE_BYTES,
    MAX_LINE,
    MAX_UNREADABLE,
    _lines,
    iter_raw_records,
    read_records_file,
)

PLAN_TEXT = """\
name: 文件
version: "1"
inputs:
  metrics:
    sales: {label: 销售额, column: 销售额, min: 0}
    new_accounts: {label: 新开户, column: 新开户, integer: true, min: 0, default: 0}
  attributes:
    grade: {type: text, column: 职级, allowed: [A, B]}
  events:
    lost_customers:
      fields: {id: text, monthly_value: number, reason: text}
policies:
  - {type: formula, id: commission, label: 提成, amount: sales * 0.1}
  - {type: rate_table, id: accounts, label: 新开户奖励, items: {new_accounts: 50}}
"""

#: the UTF-8 comma twin: Chinese headers and payee names
CSV_TEXT = ("payee,period,group,销售额,新开户,职级\n"
            "张三,2026-05,福州,48000.50,2,A\n"
            "李四,2026-05,福州,1200,0,B\n"
            "王五·欧阳,2026-05,\"厦门,思明\",10.5,1,A\n"
            "m-004,2026-05,厦门,0.10,0,B\n")
#: a payee only GB18030 (not GBK) can write: U+4DAE, CJK extension A
GB18030_ONLY = "䶮"


def _jsonl_text(csv_text: str) -> str:
    rows = []
    for line in csv_text.splitlines()[1:]:
        payee, period, group, sales, new, grade = _cells(line)
        rows.append(json.dumps({"payee": payee, "period": period, "group": group,
                                "metrics": {"sales": sales, "new_accounts": int(new)},
                                "attributes": {"grade": grade}}, ensure_ascii=False))
    return "\n".join(rows) + "\n"


def _cells(line: str) -> list[str]:
    import csv

    return next(csv.reader([line]))


JSONL_TEXT = _jsonl_text(CSV_TEXT)


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.yaml"
    path.write_text(PLAN_TEXT, encoding="utf-8")
    return path


def _write(folder: Path, name: str, text: str, encoding: str, delimiter: str = ",") -> Path:
    if delimiter != ",":
        text = "\n".join(delimiter.join(_quoted(c, delimiter) for c in _cells(line))
                         for line in text.splitlines()) + "\n"
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def _quoted(cell: str, delimiter: str) -> str:
    return f'"{cell}"' if delimiter in cell or "," in cell else cell


def _json(path: Path, **options: Any) -> str:
    plan = load_plan(PLAN_TEXT)
    return plan.evaluate(read_records_file(path, **options), errors="collect").to_json()


def _cli(*args: Any, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """``incentives ARGS`` as a real process."""
    return subprocess.run([sys.executable, "-m", "incentives", *map(str, args)],
                          capture_output=True, timeout=timeout, check=False)


# ------------------------------------------------------------------ encodings

#: (file name, encoding to write, delimiter, the encoding to name)
TWINS = [
    ("gbk.csv", "gbk", ",", "gbk"),
    ("gbk-semicolon.csv", "gbk", ";", "gbk"),
    ("gb18030.csv", "gb18030", ",", "gb18030"),
    ("bom.csv", "utf-8-sig", ",", "utf-8"),
    ("semicolon.csv", "utf-8", ";", "utf-8"),
    ("tab.csv", "utf-8", "\t", "utf-8"),
    ("pipe.csv", "utf-8", "|", "utf-8"),
    ("utf16.csv", "utf-16", ",", "utf-16"),
    ("utf16-le.jsonl", "utf-16", None, "utf-16"),
    ("utf16-be-bom.jsonl", "utf-16-be", None, "utf-16-be"),
    ("utf32.jsonl", "utf-32", None, "utf-32"),
    ("utf16-le-no-bom.jsonl", "utf-16-le", None, "utf-16-le"),
    ("utf16-be-no-bom.csv", "utf-16-be", ",", "utf-16-be"),
    ("gbk.jsonl", "gbk", None, "gbk"),
    ("bom.jsonl", "utf-8-sig", None, "utf-8"),
]


def _twin(folder: Path, name: str, encoding: str, delimiter: str | None,
          text: str | None = None) -> tuple[Path, Path]:
    """The file ``name`` and its UTF-8 (comma) twin."""
    if name.endswith(".csv"):
        text = text or CSV_TEXT
        reference = _write(folder, "ref-" + name, text, "utf-8")
        return _write(folder, name, text, encoding, delimiter or ","), reference
    text = text or JSONL_TEXT
    if encoding == "utf-16-be":  # with its byte-order mark written out
        path = folder / name
        path.write_bytes(b"\xfe\xff" + text.encode("utf-16-be"))
        return path, _write(folder, "ref-" + name, text, "utf-8")
    return _write(folder, name, text, encoding), _write(folder, "ref-" + name, text, "utf-8")


@pytest.mark.parametrize(("name", "encoding", "delimiter", "named"), TWINS,
                         ids=[t[0] for t in TWINS])
def test_a_file_in_another_encoding_or_delimiter_reads_as_its_utf8_comma_twin(
        tmp_path: Path, name: str, encoding: str, delimiter: str | None, named: str) -> None:
    path, reference = _twin(tmp_path, name, encoding, delimiter)
    assert path.read_bytes() != reference.read_bytes()
    expected = _json(reference)
    assert '"payee": "张三"' in expected
    assert '"errors": []' in expected
    # named, and detected / sniffed
    named_delimiter = delimiter if name.endswith(".csv") else None
    assert _json(path, encoding=named, delimiter=named_delimiter) == expected
    assert _json(path) == expected
    assert read_records_file(path) == read_records_file(reference)


@pytest.mark.parametrize("name", ["gbk.csv", "gb18030.csv", "semicolon.csv", "utf16-le.jsonl",
                                  "gbk-semicolon.csv"])
def test_the_cli_reads_the_twins_to_the_same_bytes(tmp_path: Path, plan_file: Path,
                                                   name: str) -> None:
    _, encoding, delimiter, named = next(t for t in TWINS if t[0] == name)
    path, reference = _twin(tmp_path, name, encoding, delimiter)
    expected = _cli("run", plan_file, reference, "--format", "json")
    assert expected.returncode == 0, expected.stderr.decode()
    assert "张三".encode() in expected.stdout
    options = ["--encoding", named] + (["--delimiter", delimiter] if name.endswith(".csv")
                                       and delimiter else [])
    for extra in ([], options):
        got = _cli("run", plan_file, path, "--format", "json", *extra)
        assert (got.returncode, got.stdout, got.stderr) == (0, expected.stdout, b"")
    streamed = _cli("stream", plan_file, reference)
    got = _cli("stream", plan_file, path, *options)
    assert (got.returncode, got.stdout) == (0, streamed.stdout)
    assert streamed.stdout.count(b"\n") == 4


def test_gb18030_holds_what_gbk_cannot(tmp_path: Path) -> None:
    text = CSV_TEXT.replace("李四", GB18030_ONLY)
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")
    path, reference = _twin(tmp_path, "x.csv", "gb18030", ",", text)
    assert _json(path) == _json(reference) == _json(path, encoding="gb18030")
    assert GB18030_ONLY in _json(path)


def test_a_short_gbk_file_is_read_as_gb18030_not_a_wild_guess(tmp_path: Path) -> None:
    """charset-normalizer alone calls this Korean (cp949): CJK bytes are read as
    GB18030 whenever that reading is plausible."""
    text = "payee,sales\n张三,100\n"
    path = _write(tmp_path, "short.csv", text, "gbk")
    from charset_normalizer import from_bytes

    assert from_bytes(path.read_bytes()).best().encoding != "gb18030"  # type: ignore[union-attr]
    assert read_records_file(path) == [{"payee": "张三", "sales": "100"}]


def test_a_western_legacy_file_is_refused_not_guessed(tmp_path: Path) -> None:
    text = "payee,name,sales\nm-1,Müller,100\nm-2,José,20\n"
    path = _write(tmp_path, "west.csv", text, "cp1252")
    with pytest.raises(UsageError, match=r"it is not UTF-8 \(line 2, byte offset 22 counted from "
                                         r"0: 0xfc\) and has no byte-order mark"):
        read_records_file(path)
    assert read_records_file(path, encoding="cp1252")[0]["name"] == "Müller"


@pytest.mark.parametrize("name", ["Niño", "Côte", "Brûlée", "Ångström", "Ça", "Äöü",
                                  "Öhrström"])
def test_western_bytes_that_decode_as_cjk_are_refused_not_misread(tmp_path: Path,
                                                                  name: str) -> None:
    """A cp1252 name such as Niño is also valid Shift-JIS or GB18030 (Ni駉): it is
    refused with a hint, not read as made-up CJK characters."""
    path = _write(tmp_path, "west.csv", f"payee,period\n{name},2026-05\n", "cp1252")
    with pytest.raises(UsageError, match=r"has no byte-order mark; name its encoding with "
                                         r"--encoding, e\.g\. cp1252 \(Western European "
                                         r"Windows\), cp1250 \(Central European\) or gb18030 "
                                         r"\(Chinese\)$"):
        read_records_file(path)
    assert read_records_file(path, encoding="cp1252") == [{"payee": name, "period": "2026-05"}]


def test_a_gbk_file_with_a_rare_name_character_is_still_detected(tmp_path: Path) -> None:
    text = "payee,group,sales\n李堃,鼓楼支行,100\n张三,鼓楼支行,20\n"
    path = _write(tmp_path, "rare.csv", text, "gbk")
    assert [r["payee"] for r in read_records_file(path)] == ["李堃", "张三"]


@pytest.mark.parametrize("name", ["區文", "經高部"])
def test_big5_that_also_decodes_as_another_cjk_encoding_is_read_as_big5(tmp_path: Path,
                                                                        name: str) -> None:
    """charset-normalizer ranks cp949 or GB18030 first for these; their readings are not
    made of common characters (區文 read as cp949 is 跋ゅ), Big5's is."""
    path = _write(tmp_path, "tw.csv", f"payee,銷售額\n{name},1\n", "big5")
    assert read_records_file(path) == [{"payee": name, "銷售額": "1"}]


def test_big5_is_detected_too(tmp_path: Path) -> None:
    path = _write(tmp_path, "tw.csv", "payee,銷售額\n陳大文,100\n", "big5")
    assert read_records_file(path) == [{"payee": "陳大文", "銷售額": "100"}]


def test_a_large_gbk_file_is_read_across_chunks(tmp_path: Path) -> None:
    """Detected on its first DETECT_BYTES, then read chunk by chunk: characters and
    \\r\\n line ends split between chunks are read whole."""
    header, *rows = CSV_TEXT.splitlines()
    lines = [header] + [rows[i % len(rows)].replace("张三", f"张三{i}") for i in range(6000)]
    text = "\r\n".join(lines) + "\r\n"
    path, reference = _twin(tmp_path, "big.csv", "gbk", ",", text)
    assert path.stat().st_size > 3 * DETECT_BYTES
    got = read_records_file(path)
    assert len(got) == 6000
    assert got == read_records_file(reference)
    assert [r["payee"] for r in got].count("张三5996") == 1
    assert _json(path) == _json(reference)


def test_lines_split_between_chunks() -> None:
    chunks = ["a\r", "\nb\r", "c\n\r", "\nd"]
    assert list(_lines(iter(chunks), "x", keepends=True)) == ["a\r\n", "b\r", "c\n", "\r\n",
                                                             "d"]
    assert list(_lines(iter(chunks), "x", keepends=False)) == ["a", "b", "c", "", "d"]


@pytest.mark.parametrize("end", ["\r", "\r\n"], ids=["CR", "CRLF"])
@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_windows_and_old_mac_line_ends_are_lines(tmp_path: Path, end: str, suffix: str) -> None:
    text = JSONL_TEXT if suffix == ".jsonl" else CSV_TEXT
    path = _write(tmp_path, "lines" + suffix, text.replace("\n", end), "utf-8")
    reference = _write(tmp_path, "ref" + suffix, text, "utf-8")
    assert path.read_bytes().count(end.encode()) == (5 if suffix == ".csv" else 4)
    assert _json(path) == _json(reference)
    assert read_records_file(path) == read_records_file(reference)


# ------------------------------------------------------------------ blank lines


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_blank_and_whitespace_only_lines_are_not_records(tmp_path: Path, plan_file: Path,
                                                         suffix: str) -> None:
    text = JSONL_TEXT if suffix == ".jsonl" else CSV_TEXT
    reference = _write(tmp_path, "ref" + suffix, text, "utf-8")
    blanks = "\n\n   \n\t\n \u3000 \n\r\n"
    if suffix == ".csv":
        blanks += ",,,,,\n , ,\t,,,\n"
    path = _write(tmp_path, "blank" + suffix, text.replace("\n", "\n \n", 1) + blanks, "utf-8")
    assert _json(path) == _json(reference)
    got = _cli("run", plan_file, path, "--format", "json")
    assert (got.returncode, got.stderr) == (0, b"")
    assert json.loads(got.stdout)["errors"] == []


# ------------------------------------------------------------------ undecodable


def _no_traceback(result: subprocess.CompletedProcess[bytes]) -> str:
    err = result.stderr.decode("utf-8")
    assert "Traceback" not in err
    assert result.stdout == b""
    return err


def test_a_bad_byte_past_the_detected_prefix_names_line_and_offset(tmp_path: Path,
                                                                   plan_file: Path) -> None:
    lines = JSONL_TEXT.splitlines() * 400
    good = ("\n".join(lines) + "\n").encode("utf-8")
    assert len(good) > DETECT_BYTES
    path = tmp_path / "bad.jsonl"
    path.write_bytes(good + b'{"payee": "caf\xe9"}\n')
    offset = len(good) + len(b'{"payee": "caf')
    result = _cli("run", plan_file, path)
    assert result.returncode == 2
    assert _no_traceback(result) == (
        f"error: records file {str(path)!r} is not valid utf-8 text: line {len(lines) + 1}, "
        f"byte offset {offset} (counted from 0): 0xe9; name the file's encoding "
        "with --encoding (e.g. gb18030, utf-16, cp1252)\n")
    with pytest.raises(UsageError, match=f"line {len(lines) + 1}, byte offset {offset} "):
        read_records_file(path)


def test_a_bad_byte_in_a_named_multibyte_encoding(tmp_path: Path, plan_file: Path) -> None:
    head = ("\n".join(CSV_TEXT.splitlines() * 3000) + "\n").encode("gbk")
    path = tmp_path / "bad.csv"
    path.write_bytes(head + "张".encode("gbk") + b"\xff\n")
    result = _cli("run", plan_file, path, "--encoding", "gb18030")
    assert result.returncode == 2
    err = _no_traceback(result)
    assert f"is not valid gb18030 text: line 15001, byte offset {len(head) + 2} " in err, err


def test_bytes_of_no_telling_encoding_are_refused_with_the_first_bad_byte(
        tmp_path: Path, plan_file: Path) -> None:
    path = tmp_path / "random.csv"
    path.write_bytes(b"payee,sales\n" + bytes(range(128, 256)) * 8)
    result = _cli("run", plan_file, path)
    assert result.returncode == 2
    err = _no_traceback(result)
    assert err.startswith(f"error: cannot tell the text encoding of records file {str(path)!r}: "
                          "it is not UTF-8 (line 2, byte offset 12 counted from 0: 0x80")


def test_a_truncated_utf16_file_is_refused(tmp_path: Path, plan_file: Path) -> None:
    path = tmp_path / "odd.jsonl"
    data = JSONL_TEXT.encode("utf-16") + b"\x00"
    path.write_bytes(data)
    result = _cli("run", plan_file, path)
    assert result.returncode == 2
    assert f"is not valid utf-16 text: line 5, byte offset {len(data) - 1} " in \
        _no_traceback(result)


@pytest.mark.parametrize(("args", "message"), [
    (["--encoding", "klingon"], "error: unknown encoding 'klingon'; for example utf-8, gb18030"),
    (["--encoding", "rot13"], "error: 'rot13' is not a text encoding"),
    (["--delimiter", ";;"], "error: delimiter ';;': give one character"),
    (["--delimiter", '"'], "error: delimiter '\"': give one character"),
    (["--max-bytes", "lots"], "argument --max-bytes: 'lots' is not a size such as 300M or 2G"),
])
def test_bad_file_options_are_usage_errors(tmp_path: Path, plan_file: Path, args: list[str],
                                           message: str) -> None:
    path = _write(tmp_path, "r.csv", CSV_TEXT, "utf-8")
    result = _cli("run", plan_file, path, *args)
    assert result.returncode == 2
    assert message in _no_traceback(result)


@pytest.mark.parametrize("name", ["utf-8\x00", "", "x" * 300])
def test_a_strange_encoding_name_is_a_usage_error(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, "r.jsonl", JSONL_TEXT, "utf-8")
    with pytest.raises(UsageError, match=r"^unknown encoding "):
        read_records_file(path, encoding=name)


def test_a_delimiter_is_for_csv_only(tmp_path: Path, plan_file: Path) -> None:
    path = _write(tmp_path, "r.jsonl", JSONL_TEXT, "utf-8")
    result = _cli("run", plan_file, path, "--delimiter", ";")
    assert result.returncode == 2
    assert f"{str(path)!r}: a delimiter applies to .csv files only" in _no_traceback(result)


def test_named_delimiters(tmp_path: Path) -> None:
    reference = _write(tmp_path, "ref.csv", CSV_TEXT, "utf-8")
    for word, char in [("tab", "\t"), ("semicolon", ";"), ("pipe", "|"), ("\\t", "\t")]:
        path = _write(tmp_path, f"{word.strip(chr(92))}.csv", CSV_TEXT, "utf-8", char)
        assert _json(path, delimiter=word) == _json(reference)


# ------------------------------------------------------------------ CSV headers


@pytest.mark.parametrize("header", ["payee,period,group,销售额,新开户,销售额",
                                    "payee,period,group,销售额,新开户, 销售额 "])
def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path: Path, plan_file: Path,
                                                       header: str) -> None:
    path = _write(tmp_path, "dup.csv", header + "\n张三,2026-05,福州,1,0,A\n", "utf-8")
    result = _cli("run", plan_file, path)
    assert result.returncode == 2
    assert _no_traceback(result) == (
        f"error: records file {str(path)!r}: the header names the column '销售额' twice "
        "(columns 4 and 6)\n")


# ------------------------------------------------------------------ files that never end


def test_dev_zero_as_records_ends_with_a_clear_error(tmp_path: Path, plan_file: Path) -> None:
    link = tmp_path / "zero.jsonl"
    link.symlink_to("/dev/zero")
    start = time.monotonic()
    result = _cli("run", plan_file, link, timeout=60)
    assert time.monotonic() - start < 30
    assert result.returncode == 2
    assert _no_traceback(result) == (
        f"error: records file {str(link)!r}: line 1 is longer than {MAX_LINE:,} characters, "
        "the most a line may hold (records.MAX_LINE)\n")


def test_dev_urandom_as_records_ends_with_a_clear_error(tmp_path: Path, plan_file: Path) -> None:
    link = tmp_path / "random.csv"
    link.symlink_to("/dev/urandom")
    result = _cli("run", plan_file, link, timeout=60)
    assert result.returncode == 2
    assert "cannot tell the text encoding" in _no_traceback(result)


def _fifo_run(tmp_path: Path, name: str, writer: str, *args: Any) -> tuple[int, str, float]:
    """Run ``incentives`` on a FIFO fed by ``writer`` (Python code writing to stdout
    forever); the writer is stopped when the run ends."""
    fifo = tmp_path / name
    os.mkfifo(fifo)
    # the writer opens the FIFO itself (an open blocks until the reader comes)
    code = f"import sys\nout = open({str(fifo)!r}, 'wb')\n{writer}"
    feeder = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    try:
        start = time.monotonic()
        result = _cli(*[a if a != "FIFO" else fifo for a in args], timeout=120)
        took = time.monotonic() - start
    finally:
        feeder.kill()
        feeder.wait()
    return result.returncode, _no_traceback(result), took


def test_a_fifo_whose_writer_never_stops_ends_with_a_clear_error(tmp_path: Path,
                                                                 plan_file: Path) -> None:
    forever_y = "while True:\n    out.write(b'y\\n' * 4096)"
    code, err, took = _fifo_run(tmp_path, "y.jsonl", forever_y, "run", plan_file, "FIFO")
    assert code == 2
    assert took < 60
    assert err.endswith(f"more than {MAX_UNREADABLE} lines cannot be read as records; "
                        "is it a JSON Lines file?\n"), err
    forever_zero = "while True:\n    out.write(bytes(65536))"
    code, err, _ = _fifo_run(tmp_path, "zero.csv", forever_zero, "stream", plan_file, "FIFO")
    assert code == 2
    assert f"line 1 is longer than {MAX_LINE:,} characters" in err


def test_a_fifo_of_good_records_stops_at_the_size_limit(tmp_path: Path, plan_file: Path) -> None:
    line = JSONL_TEXT.splitlines()[0].encode("utf-8") + b"\n"
    forever = f"while True:\n    out.write({line!r} * 1000)"
    code, err, took = _fifo_run(tmp_path, "good.jsonl", forever, "run", plan_file, "FIFO",
                                "--max-bytes", "2M")
    assert code == 2
    assert took < 60
    assert f"is larger than {2 << 20:,} bytes, the most read from it (--max-bytes" in err


def test_a_records_file_over_max_bytes_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.jsonl", JSONL_TEXT, "utf-8")
    size = path.stat().st_size
    assert len(read_records_file(path, max_bytes=size)) == 4
    with pytest.raises(UsageError, match=f"is larger than {size - 1:,} bytes"):
        read_records_file(path, max_bytes=size - 1)
    assert MAX_FILE_BYTES == 256 * 1024 * 1024


def test_a_regular_file_is_read_whole_whatever_its_size(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the default cap is for what may never end (a FIFO, a device); a file's size is known,
    # and stream exists to read files larger than memory
    import incentives.records as records

    path = _write(tmp_path, "r.jsonl", JSONL_TEXT, "utf-8")
    monkeypatch.setattr(records, "MAX_FILE_BYTES", 10)
    assert path.stat().st_size > 10
    assert len(read_records_file(path)) == 4


def test_a_plan_from_dev_zero_ends_with_a_clear_error(tmp_path: Path) -> None:
    link = tmp_path / "plan.yaml"
    link.symlink_to("/dev/zero")
    result = _cli("validate", link)
    assert result.returncode == 2
    assert _no_traceback(result) == (f"error: {link}: the plan file is larger than 8,000,003 "
                                     "bytes, the most it may hold\n")


def test_a_state_from_a_device_ends_with_a_clear_error(tmp_path: Path, plan_file: Path) -> None:
    records = _write(tmp_path, "r.jsonl", JSONL_TEXT, "utf-8")
    link = tmp_path / "state.json"
    link.symlink_to("/dev/zero")
    result = _cli("run", plan_file, records, "--state", link)
    assert result.returncode == 2
    # refused before any work, as not a regular file; read, it would stop at the cap
    assert _no_traceback(result) == (
        f"error: --state {link}: not a regular file (a device or a pipe); it is replaced "
        "whole when the output is complete, so give a file\n")


def test_capped_reads_stop_at_the_limit() -> None:
    start = time.monotonic()
    with pytest.raises(UsageError, match=r"^/dev/zero is larger than 1,000 bytes"):
        read_bytes_capped("/dev/zero", 1000, "/dev/zero")
    assert time.monotonic() - start < 1
    with pytest.raises(RecordError, match="too big"):
        read_bytes_capped("/dev/urandom", 10, "x", error=lambda m: RecordError("too big"))


def test_too_many_bad_records_stop_the_run(tmp_path: Path, plan_file: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps({"payee": f"p{i}", "period": "2026-05"}) + "\n"
                            for i in range(MAX_ERRORS + 1)), encoding="utf-8")
    for command in ("run", "stream"):
        result = _cli(command, plan_file, path)
        assert result.returncode == 2
        err = _no_traceback(result)
        assert err.endswith("error: more than 10,000 records failed: stopped (is it the right "
                            "records file for this plan?)\n"), err[-300:]


def test_the_python_api_collects_every_bad_record_unless_told_a_limit() -> None:
    plan = load_plan(PLAN_TEXT)
    bad = [{"payee": f"p{i}", "period": "2026-05"} for i in range(MAX_ERRORS + 5)]
    run = plan.evaluate([*bad, {**BASE, "payee": "ok"}], errors="collect")
    assert len(run.errors) == MAX_ERRORS + 5
    assert [r.payee for r in run.results] == ["ok"]
    compiled = load_plan(PLAN_TEXT).compile()
    compiled.reader.max_errors = 3
    with pytest.raises(UsageError, match=r"^more than 3 records failed: stopped"):
        compiled.evaluate(bad[:4], errors="collect")
    assert len(compiled.evaluate(bad[:3], errors="collect").errors) == 3


# ------------------------------------------------------------------ unambiguous records

BASE = {"payee": "m-1", "period": "2026-05", "group": "福州",
        "metrics": {"sales": "100", "new_accounts": 1}, "attributes": {"grade": "A"},
        "events": {"lost_customers": [{"id": "c-1", "monthly_value": "10", "reason": "x"}]}}

#: where a control character goes, and the field the error names
PLACES: dict[str, Callable[[dict[str, Any], str], str]] = {}


def _place(field: str) -> Callable[[Callable[[dict[str, Any], str], None]],
                                    Callable[[dict[str, Any], str], None]]:
    def register(fn: Callable[[dict[str, Any], str], None]) -> Callable[[dict[str, Any], str],
                                                                         None]:
        PLACES[field] = fn  # type: ignore[assignment]
        return fn
    return register


@_place("payee")
def _payee(r: dict[str, Any], c: str) -> None:
    r["payee"] = f"m{c}-1"


@_place("period")
def _period(r: dict[str, Any], c: str) -> None:
    r["period"] = f"2026-05{c}"


@_place("group")
def _group(r: dict[str, Any], c: str) -> None:
    r["group"] = f"福{c}州"


@_place("attributes.grade")
def _grade(r: dict[str, Any], c: str) -> None:
    r["attributes"]["grade"] = f"A{c}"


@_place("events.lost_customers[0].id")
def _event_id(r: dict[str, Any], c: str) -> None:
    r["events"]["lost_customers"][0]["id"] = f"c{c}1"


@_place("events.lost_customers[0].reason")
def _event_reason(r: dict[str, Any], c: str) -> None:
    r["events"]["lost_customers"][0]["reason"] = f"{c}competitor"


CONTROLS = ["\x00", "\x07", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9b", "\u2028",
            "\u2029", "\u202e", "\u2066", "\ud800"]


@pytest.mark.parametrize("char", CONTROLS, ids=[f"U+{ord(c):04X}" for c in CONTROLS])
@pytest.mark.parametrize("field", list(PLACES))
def test_control_characters_are_refused_in_ids_and_text(field: str, char: str) -> None:
    raw = json.loads(json.dumps(BASE))
    PLACES[field](raw, char)
    good = {**json.loads(json.dumps(BASE)), "payee": "m-2"}
    run = load_plan(PLAN_TEXT).evaluate([raw, good], errors="collect")
    assert [r.payee for r in run.results] == ["m-2"]
    (error,) = run.errors
    assert type(error) is RecordError
    assert error.field == field
    assert error.message.startswith(f"control character U+{ord(char):04X} in ")
    assert error.payee == (None if field == "payee" else "m-1") or field == "payee"
    assert str(error).isprintable()


@pytest.mark.parametrize("char", ["\x1b", "\x00", "\u2028", "\u202e", "\ud800", "\x9b"])
def test_no_control_character_reaches_the_terminal(tmp_path: Path, plan_file: Path,
                                                   char: str) -> None:
    rows = []
    for field, place in PLACES.items():
        raw = json.loads(json.dumps(BASE))
        place(raw, char)
        raw["payee"] = raw["payee"] if field == "payee" else f"p-{len(rows)}"
        rows.append(json.dumps(raw))
    rows.append(json.dumps({**BASE, "payee": "ok", "metrics": {"sales": "1", f"x{char}": 1}}))
    rows.append(json.dumps({**BASE, "payee": "ok2", f"k{char}" * 30: 1}))
    rows.append(json.dumps({**BASE, "payee": "ok3"}))
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8", errors="surrogatepass")
    for command in (["run", "--format", "table"], ["run", "--format", "json"],
                    ["run", "--format", "csv"], ["stream"]):
        result = _cli(command[0], plan_file, path, *command[1:])
        assert result.returncode == 1
        for stream in (result.stdout, result.stderr):
            text = stream.decode("utf-8")  # also: nothing that is not UTF-8
            assert char not in text
            assert all(c.isprintable() or c == "\n" for c in text if ord(c) < 0x20
                       or 0x7F <= ord(c) <= 0x9F)
        assert result.stderr.count(b"error: ") == len(rows) - 1


def test_a_long_offending_value_is_quoted_short() -> None:
    raw = json.loads(json.dumps(BASE))
    raw["attributes"]["grade"] = "Z" * 5000
    (error,) = load_plan(PLAN_TEXT).evaluate([raw], errors="collect").errors
    assert error.message.startswith("text too long (5000 characters")
    raw["attributes"]["grade"] = "Z" * 500
    (error,) = load_plan(PLAN_TEXT).evaluate([raw], errors="collect").errors
    assert error.message == f"{'Z' * 40!r}… is not one of A, B"
    raw["attributes"]["grade"] = "A"
    raw["metrics"]["s" * 300] = 1
    (error,) = load_plan(PLAN_TEXT).evaluate([raw], errors="collect").errors
    assert error.message == f"unknown metric {'s' * 40!r}…"
    assert error.field == "metrics." + "s" * 40 + "..."


DUPLICATES = [
    ('{"payee": "m-1", "payee": "m-2", "period": "2026-05"}', None, "payee", "payee"),
    ('{"payee": "m-1", "period": "2026-05", "metrics": {"sales": "1", "sales": "2"}}',
     "m-1", "metrics.sales", "sales"),
    ('{"payee": "m-1", "period": "2026-05", "attributes": {"职级": "A", "职级": "B"}}',
     "m-1", "attributes.职级", "职级"),
    ('{"payee": "m-1", "period": "2026-05", "metrics": {"sales": "1"}, "events": '
     '{"lost_customers": [{"id": "c"}, {"id": "c", "reason": "x", "reason": "y"}]}}',
     "m-1", "events.lost_customers[1].reason", "reason"),
    ('{"payee": "m-1", "period": "2026-05", "events": {"lost_customers": [], '
     '"lost_customers": []}}', "m-1", "events.lost_customers", "lost_customers"),
]


@pytest.mark.parametrize(("text", "payee", "field", "key"), DUPLICATES,
                         ids=[d[2] for d in DUPLICATES])
def test_a_key_named_twice_is_refused_on_every_path(tmp_path: Path, plan_file: Path, text: str,
                                                   payee: str | None, field: str,
                                                   key: str) -> None:
    good = json.dumps({**BASE, "payee": "m-9"})
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text(f"{good}\n{text}\n", encoding="utf-8")
    whole = tmp_path / "r.json"
    whole.write_text(f"[{good},\n{text}]", encoding="utf-8")
    wrapped = tmp_path / "w.json"
    wrapped.write_text(f'{{"records": [{good},\n{text}]}}', encoding="utf-8")
    plan = load_plan(PLAN_TEXT)
    seen = []
    for path, where in [(jsonl, "line 2: "), (whole, ""), (wrapped, "")]:
        run = plan.evaluate(iter_raw_records(path), errors="collect")
        assert [r.payee for r in run.results] == ["m-9"]
        (error,) = run.errors
        assert (error.payee, error.field) == (payee, field)
        assert error.period == ("2026-05" if payee else None)
        assert error.message == f"{where}duplicate key {key!r}"
        seen.append(error.message.removeprefix(where))
    assert len(set(seen)) == 1
    errors = tmp_path / "errors.jsonl"
    result = _cli("stream", plan_file, jsonl, "--errors", errors)
    assert result.returncode == 1
    assert json.loads(errors.read_text("utf-8"))["field"] == field


def test_a_key_named_twice_around_the_records_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"records": [], "records": []}', encoding="utf-8")
    with pytest.raises(UsageError, match="duplicate key 'records'"):
        read_records_file(path)


def test_deep_nesting_of_100000_levels_is_a_record_error(tmp_path: Path,
                                                         plan_file: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    good = json.dumps({**BASE, "payee": "m-9"})
    bad = '{"payee": "张三", "period": "2026-05", "metrics": {"sales": ' + deep + "}}"
    for suffix, text in [(".jsonl", f"{good}\n{bad}\n{'{' * 100_000}\n"),
                         (".json", f"[{good}, {bad}, {'[' * 100_000}{']' * 100_000}]")]:
        path = tmp_path / f"deep{suffix}"
        path.write_text(text, encoding="utf-8")
        result = _cli("run", plan_file, path, "--format", "json")
        assert result.returncode == 1
        assert "Traceback" not in result.stderr.decode()
        data = json.loads(result.stdout)
        assert [r["payee"] for r in data["results"]] == ["m-9"]
        assert [(e["payee"], e["field"]) for e in data["errors"]] == [
            (None, "line 3" if suffix == ".jsonl" else None), ("张三", "metrics.sales")]
        assert "nested too deeply (100,002 levels" in data["errors"][1]["message"]


def test_a_csv_cell_over_the_csv_modules_limit_is_a_record_error(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    huge = "x" * 200_000
    path.write_text(CSV_TEXT + f"{huge},2026-05,福州,1,0,A\n"
                    f"m-9,2026-05,福州,1,0,\"{huge}\"\n"
                    f"m-10,2026-05,福州,1,0,\"A{huge}\nB\"\n"
                    "m-11,2026-05,福州,1,0,A\n", encoding="utf-8")
    run = load_plan(PLAN_TEXT).evaluate(iter_raw_records(path), errors="collect")
    assert sorted(r.payee for r in run.results) == ["m-004", "m-11", "张三", "李四", "王五·欧阳"]
    messages = [(e.payee, e.field, e.message[:30]) for e in run.errors]
    assert sorted(messages, key=str) == [
        ("m-10", "attributes.grade", "control character U+000A in 'A"),
        ("m-9", "attributes.grade", "text too long (200000 characte"),
        ("x" * 40 + "...", "payee", "payee is too long (200000 char")]


# ------------------------------------------------------------------ property: duplicates

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_names = st.sampled_from(["sales", "new_accounts", "职级", "grade", "id", "reason", "x"])
_leaf = st.one_of(st.sampled_from(["1", "A", "", "c-1"]), st.integers(0, 9), st.none())


def _dump(value: Any, twice: list[int], counter: list[int], path: list[str],
          found: list[str]) -> str:
    """``value`` as JSON text, the ``twice[0]``-th object (in document order) naming
    its first key twice; the path to that key is put in ``found``."""
    if isinstance(value, dict):
        counter[0] += 1
        items = [(k, v) for k, v in value.items()]
        if counter[0] == twice[0] and items:
            items.insert(1, items[0])
            found[:] = [*path, items[0][0]]
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: "
                               f"{_dump(v, twice, counter, [*path, k], found)}"
                               for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v, twice, counter, [*path[:-1], f"{path[-1]}[{i}]"], found)
                               for i, v in enumerate(value)) + "]"
    return json.dumps(value, ensure_ascii=False)


_records = st.fixed_dictionaries(
    {"payee": st.sampled_from(["m-1", "张三"]), "period": st.just("2026-05")},
    optional={"metrics": st.dictionaries(_names, _leaf, min_size=1, max_size=3),
              "attributes": st.dictionaries(_names, _leaf, min_size=1, max_size=2),
              "events": st.fixed_dictionaries({"lost_customers": st.lists(
                  st.dictionaries(_names, _leaf, min_size=1, max_size=3), max_size=3)})})


@settings(max_examples=80, deadline=None)
@given(record=_records, which=st.integers(1, 6))
def test_a_key_named_twice_anywhere_is_the_same_error_on_every_path(
        tmp_path_factory: pytest.TempPathFactory, record: dict[str, Any], which: int) -> None:
    found: list[str] = []
    text = _dump(record, [which], [0], [], found)
    folder = tmp_path_factory.mktemp("dup")
    good = json.dumps({**BASE, "payee": "m-9"})
    (folder / "r.jsonl").write_text(f"{good}\n{text}\n", encoding="utf-8")
    (folder / "r.json").write_text(f"[{good}, {text}]", encoding="utf-8")
    plan = load_plan(PLAN_TEXT)
    outcomes = []
    for name in ("r.jsonl", "r.json"):
        run = plan.evaluate(iter_raw_records(folder / name), errors="collect")
        assert "m-9" in [r.payee for r in run.results]
        outcomes.append([(e.payee, e.period, e.field, e.message.removeprefix("line 2: "))
                         for e in run.errors] or run.to_json())
    assert outcomes[0] == outcomes[1]
    if found:  # a key named twice: refused, naming it, and nothing else said
        assert outcomes[0] == [(None if found == ["payee"] else record["payee"],
                                None if found in (["payee"], ["period"]) else "2026-05",
                                ".".join(found), f"duplicate key {found[-1]!r}")]
    else:
        assert "duplicate" not in str(outcomes[0])


def test_explain_reads_a_gbk_semicolon_file_as_its_twin(tmp_path: Path, plan_file: Path) -> None:
    path, reference = _twin(tmp_path, "gbk-semicolon.csv", "gbk", ";")
    expected = _cli("explain", plan_file, reference, "--payee", "张三")
    assert expected.returncode == 0, expected.stderr.decode()
    assert b"Total: 4,800.05 + 100.00 = 4,900.05" in expected.stdout
    for extra in ([], ["--encoding", "gb18030", "--delimiter", "semicolon"]):
        got = _cli("explain", plan_file, path, "--payee", "张三", *extra)
        assert (got.returncode, got.stdout) == (0, expected.stdout)
    wrong = _cli("explain", plan_file, path, "--payee", "张三", "--encoding", "utf-8")
    assert wrong.returncode == 2
    assert "is not valid utf-8 text: line 1, byte offset 19 (counted from 0): 0xcf;" in \
        _no_traceback(wrong)


def test_trailing_delimiters_of_a_spreadsheet_export_are_not_columns(tmp_path: Path,
                                                                     plan_file: Path) -> None:
    """A header ending in ;; (columns without names) reads as its twin; a value under
    such a column is that record's error, naming the column by its place."""
    reference = _write(tmp_path, "ref.csv", CSV_TEXT, "utf-8")
    lines = CSV_TEXT.splitlines()
    text = "\n".join(line + ",," for line in lines[:3]) + "\n" + "\n".join(lines[3:]) + "\n"
    path = _write(tmp_path, "trailing.csv", text, "utf-8")
    assert read_records_file(path) == read_records_file(reference)
    bad = _write(tmp_path, "bad.csv", text.replace("A,,", "A,,x", 1), "utf-8")
    run = load_plan(PLAN_TEXT).evaluate(read_records_file(bad), errors="collect")
    assert sorted(r.payee for r in run.results) == ["m-004", "李四", "王五·欧阳"]
    assert [str(e) for e in run.errors] == [
        "payee '张三' period 2026-05 field 'column 8 (no name in the header)': unknown field "
        "'column 8 (no name in the header)'"]
    for command in ("run", "stream"):
        got = _cli(command, plan_file, path, "--format", "csv")
        want = _cli(command, plan_file, reference, "--format", "csv")
        assert (got.returncode, got.stdout, got.stderr) == (0, want.stdout, b"")


@pytest.mark.parametrize(("text", "message"), [
    ("payee,销售额,职级\nm-1,100,A\n\"m-2,200,A\nm-3,300,A\n",
     "a quoted cell in the row starting on line 3 is never closed (a \" without its pair), "
     "so no row after it can be read"),
    ("payee,\"sales\nm-1,100\n",
     "the header (line 1) is not a CSV row: a quoted cell in the row starting on line 1 is "
     "never closed (a \" without its pair), so no row after it can be read"),
    ("\n\npayee," + "x" * 200_000 + "\nm-1,100\n",
     "the header (line 3) is not a CSV row: a cell is longer than 131,072 characters"),
])
def test_a_csv_file_whose_quotes_swallow_the_rest_is_refused(tmp_path: Path, plan_file: Path,
                                                             text: str, message: str) -> None:
    """An unclosed quote would read every later row into one cell (one failed record
    hiding the rest): the file is refused, exit 2, as is a header the csv module
    cannot read (once a traceback)."""
    path = _write(tmp_path, "q.csv", text, "utf-8")
    with pytest.raises(UsageError) as info:
        read_records_file(path)
    assert str(info.value) == f"records file {str(path)!r}: {message}"
    for command in ("run", "stream", "explain"):
        extra = ["--payee", "m-1"] if command == "explain" else []
        result = _cli(command, plan_file, path, "--period", "2026-05", *extra)
        assert (result.returncode, result.stdout) == (2, b"")
        assert result.stderr.decode() == f"error: {info.value}\n"


def test_a_quote_in_the_middle_of_a_cell_is_that_rows_error(tmp_path: Path) -> None:
    """"g"x is not a CSV cell: the row is refused (it was read as gx), the others read."""
    path = _write(tmp_path, "q.csv", 'payee,group\nm-1,"g"x\nm-2,g\n', "utf-8")
    first, second = read_records_file(path)
    assert isinstance(first, RecordError)
    assert str(first) == "record field 'line 2': line 2 is not a CSV row: ',' expected after '\"'"
    assert second == {"payee": "m-2", "group": "g"}


def test_jsonl_files_joined_with_their_byte_order_marks_read_as_one(tmp_path: Path) -> None:
    """``cat a.jsonl b.jsonl`` of two UTF-8 files written with a byte-order mark: the
    second mark starts a line, which is read (it was 'line 5 is not JSON')."""
    reference = _write(tmp_path, "ref.jsonl", JSONL_TEXT, "utf-8")
    lines = JSONL_TEXT.splitlines(keepends=True)
    joined = tmp_path / "joined.jsonl"
    joined.write_bytes(("\ufeff" + "".join(lines[:2]) + "\ufeff" + "".join(lines[2:]))
                       .encode("utf-8"))
    assert read_records_file(joined) == read_records_file(reference)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(("".join(lines[:2]) + "\ufeff{oops\n").encode("utf-8"))
    assert [str(r) for r in read_records_file(bad)[2:]] == [
        "record field 'line 3': line 3 is not JSON: Expecting property name enclosed in "
        "double quotes"]
