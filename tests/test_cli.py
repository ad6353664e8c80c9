"""The command line: exit codes, formats, atomic output, located plan errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from wcwidth import wcswidth

from incentives import FormulaLine, Plan


def test_misspelt_metric_in_formula_is_refused_with_location(tmp_path: Path, examples: Path,
                                                             cli) -> None:  # type: ignore[no-untyped-def]
    text = (examples / "telecom/plan.yaml").read_text(encoding="utf-8")
    bad = text.replace("per_customer: churn_multiple * monthly_value",
                       "per_customer: churn_multiple * monthly_valeu")
    assert bad != text
    plan = tmp_path / "plan.yaml"
    plan.write_text(bad, encoding="utf-8")
    line = next(i for i, t in enumerate(bad.splitlines(), start=1) if "monthly_valeu" in t)
    res = cli("validate", plan)
    assert res.code == 2
    assert f"plan.yaml:{line}" in res.err
    assert "policies[3].per_customer" in res.err
    assert "(policy 'churn_penalty')" in res.err
    assert "unknown name 'monthly_valeu'" in res.err
    assert "did you mean 'monthly_value'?" in res.err
    res = cli("run", plan, examples / "telecom/records.jsonl")
    assert res.code == 2


def test_validate_ok(examples: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("validate", examples / "telecom/plan.yaml")
    assert res.code == 0
    assert "ok" in res.out


def test_bad_usage_exits_2(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("run")
    assert res.code == 2
    res = cli("run", "missing-plan.yaml", "records.json")
    assert res.code == 2
    assert "cannot read the plan file" in res.err


def test_bad_record_exits_1_and_good_records_still_run(tmp_path: Path, examples: Path,
                                                        cli) -> None:  # type: ignore[no-untyped-def]
    records = tmp_path / "records.jsonl"
    records.write_text(
        (examples / "telecom/records.jsonl").read_text(encoding="utf-8")
        + '{"payee": "W", "period": "2026-05", "metrics": {"traffic_revenue": ""}}\n'
        + '{"payee": "V", "period": "2026-05", "metrics": {"traffic_revenue": "abc"}}\n',
        encoding="utf-8",
    )
    res = cli("run", examples / "telecom/plan.yaml", records, "--format", "json")
    assert res.code == 1
    data = json.loads(res.out)
    assert [r["payee"] for r in data["results"]] == ["X", "Y", "Z"]
    errors = {e["payee"]: e for e in data["errors"]}
    assert errors["W"]["field"] == "metrics.traffic_revenue"
    assert "blank" in errors["W"]["message"]
    assert errors["V"]["field"] == "metrics.traffic_revenue"
    assert "not a number" in errors["V"]["message"]
    assert "payee 'V' period 2026-05 field 'metrics.traffic_revenue'" in res.err


def test_out_file_and_byte_identical_json(tmp_path: Path, examples: Path, cli) -> None:  # type: ignore[no-untyped-def]
    outs = []
    for name in ("a.json", "b.json"):
        out = tmp_path / name
        res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl",
                  "--format", "json", "--out", out)
        assert res.code == 0
        assert res.out == ""
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert b'"total": "948.00"' in outs[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_table_is_readable(examples: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "200")
    res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl")
    assert res.code == 0
    lines = res.out.splitlines()
    assert lines[0].startswith("payee")
    assert "通信费提成" in lines[0]
    assert lines[3].split()[-1] == "948.00"
    assert lines[-1].split()[-1] == "5708.00"


TELECOM_200 = """\
payee  period   group                          通信费提成      新业务奖励     客户流失扣罚                保底    total
                                     (traffic commission)  (new business)  (churn penalty)  (guaranteed floor)
-----  -------  -------------------  --------------------  --------------  ---------------  ------------------  -------
X      2026-05  fuzhou-key-accounts               1400.00          180.00          -632.00                0.00   948.00
Y      2026-05  fuzhou-key-accounts                200.00            0.00             0.00              500.00   700.00
Z      2026-05  fuzhou-key-accounts               3800.00          260.00             0.00                0.00  4060.00
                total                             5400.00          440.00          -632.00              500.00  5708.00
"""

TELECOM_80 = """\
payee  period   group                          通信费提成    total
                                     (traffic commission)
-----  -------  -------------------  --------------------  -------
X      2026-05  fuzhou-key-accounts               1400.00   948.00
Y      2026-05  fuzhou-key-accounts                200.00   700.00
Z      2026-05  fuzhou-key-accounts               3800.00  4060.00
                total                             5400.00  5708.00
(3 columns left out to fit 80 characters: new_business, churn_penalty, floor;
 --columns all shows every column, --format csv/json give everything)
"""

TOBACCO_80_HEAD = """\
payee  period   group       基本工资       月度销售竞赛     total
                          (base pay)  (monthly contest)
-----  -------  --------  ----------  -----------------  --------
CS-01  2026-05  cangshan     3500.00            1200.00   8579.59
"""

TOBACCO_80_TAIL = """\
                total       41500.00            5000.00  71568.74
(5 columns left out to fit 80 characters: service_star, innovation_award,
 team_pool, pool_balance, head_bonus; --columns all shows every column, --format
 csv/json give everything)

CS-01 2026-05: titles 服务之星 Service Star, 创新奖 Innovation Award
CS-02 2026-05: titles 服务之星 Service Star
GL-01 2026-05: titles 服务之星 Service Star
GL-03 2026-05: titles 创新奖 Innovation Award
CS-04 2026-05: flags 末位预警 bottom-rank warning
GL-05 2026-05: flags 末位预警 bottom-rank warning
group cangshan 2026-05: team_pool_pool 7600.00, pay_spread 6525.00,
    pay_spread_ratio 1.8294, pay_spread_cv 0.2162, pay_spread_gini 0.1198
group gulou 2026-05: team_pool_pool 8580.00, pay_spread 6016.00,
    pay_spread_ratio 1.6053, pay_spread_cv 0.1710, pay_spread_gini 0.0961
"""


def test_table_fits_the_terminal_width_and_notes_what_it_left_out(
        examples: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    telecom = (examples / "telecom/plan.yaml", examples / "telecom/records.jsonl")
    monkeypatch.setenv("COLUMNS", "200")
    assert cli("run", *telecom).out == TELECOM_200
    monkeypatch.setenv("COLUMNS", "80")
    assert cli("run", *telecom).out == TELECOM_80
    out = cli("run", examples / "tobacco/plan.yaml", examples / "tobacco/records.jsonl").out
    assert out.startswith(TOBACCO_80_HEAD)
    assert out.endswith(TOBACCO_80_TAIL)
    assert max(wcswidth(line) for line in out.splitlines()) == 80
    # --columns all: every column, however narrow the terminal
    assert cli("run", *telecom, "--columns", "all").out == TELECOM_200
    monkeypatch.setenv("COLUMNS", "200")
    wide = cli("run", examples / "tobacco/plan.yaml", examples / "tobacco/records.jsonl").out
    assert "left out" not in wide
    assert "主任团队奖" in wide.splitlines()[0]


def test_table_columns_by_id_or_label_in_the_order_given(examples: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl",
              "--columns", "payee,total,commission,保底 (guaranteed floor)")
    assert res.code == 0, res.err
    assert res.out == (
        "payee    total            通信费提成                保底\n"
        "                (traffic commission)  (guaranteed floor)\n"
        "-----  -------  --------------------  ------------------\n"
        "X       948.00               1400.00                0.00\n"
        "Y       700.00                200.00              500.00\n"
        "Z      4060.00               3800.00                0.00\n"
        "total  5708.00               5400.00              500.00\n")


def test_table_columns_of_numbers_only_set_the_totals_apart(examples: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl",
              "--columns", "total,floor,total")  # a name given twice: once
    assert res.out == ("  total                保底\n"
                       "         (guaranteed floor)\n"
                       "-------  ------------------\n"
                       " 948.00                0.00\n"
                       " 700.00              500.00\n"
                       "4060.00                0.00\n"
                       "-------  ------------------\n"
                       "5708.00              500.00\n")
    every = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl",
                "--columns", " ALL ")
    assert every.out == TELECOM_200


def test_table_columns_refused_with_a_usage_error(examples: Path, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "t.txt"
    res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl",
              "--columns", "payee,comission", "--out", out)
    assert res.code == 2
    assert res.out == ""
    assert res.err == ("error: --columns: no column 'comission'; did you mean 'commission'? "
                       "(columns: all, payee, period, group, total, commission, new_business, "
                       "variable_pay, churn_penalty, floor, or a policy's label)\n")
    assert not out.exists()
    res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl",
              "--columns", "all", "--format", "csv")
    assert res.code == 2
    assert res.err == ("error: --columns chooses the table's columns; --format csv gives "
                       "every column\n")
    res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl",
              "--columns", "payee,,total")
    assert res.code == 2
    assert "an empty column name" in res.err
    choices = ("payee, period, group, total, commission, new_business, variable_pay, "
               "churn_penalty, floor, or a policy's label")
    for columns, err in [
            ("payee,nope", f"error: --columns: no column 'nope' (columns: all, {choices})\n"),
            ("x" * 5000, f"error: --columns: no column '{'x' * 40}'… (columns: all, {choices})\n"),
            ("all,payee", f"error: --columns: 'all' stands alone; or name the columns ({choices})\n"),
            ("pay\x1bee", "error: --columns: no column 'pay\\x1bee'; did you mean 'payee'? "
                          f"(columns: all, {choices})\n")]:
        res = cli("run", examples / "telecom/plan.yaml", examples / "telecom/records.jsonl",
                  "--columns", columns)
        assert (res.code, res.out, res.err) == (2, "", err)


def test_readme_shows_the_table_as_printed(examples: Path, cli,
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    readme = (examples.parent / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ incentives run examples/telecom/plan.yaml "
                         "examples/telecom/records.jsonl\n")[1].split("```")[0]
    monkeypatch.setenv("COLUMNS", "80")
    assert shown == TELECOM_80 == cli("run", examples / "telecom/plan.yaml",
                                      examples / "telecom/records.jsonl").out


def test_table_errors_are_wrapped_within_the_width() -> None:
    plan = Plan(name="w", inputs={"metrics": {"sales": {}}},
                policies=[FormulaLine(id="bonus", amount="sales")])
    run = plan.evaluate([{"payee": "a", "period": "2026-05", "metrics": {"sales": 1}},
                         {"payee": "b" * 30, "period": "2026-05", "metrics": {"sales": "x"}}],
                        errors="collect")
    text = run.to_table(width=50)
    tail = text.split("1 record(s) not evaluated:\n")[1].splitlines()
    assert tail[0].startswith("  payee 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'")
    assert all(line.startswith("    ") for line in tail[1:])
    assert " ".join(" ".join(tail).split()) == " ".join(str(run.errors[0]).split())
    assert all(wcswidth(line) <= 50 for line in text.splitlines() if "bbbbb" not in line)


def test_table_width_from_columns_in_a_real_process(examples: Path) -> None:
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "incentives", "run", str(examples / "telecom/plan.yaml"),
         str(examples / "telecom/records.jsonl")],
        capture_output=True, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode("utf-8") == TELECOM_80


def test_cjk_labels_and_ids_align_within_the_width() -> None:
    plan = Plan(name="宽", inputs={"metrics": {"销售额": {}}}, policies=[
        FormulaLine(id=f"p{i}", label=label, amount=f"销售额 * {i + 1}")
        for i, label in enumerate(["提成", "新业务奖励", "客户流失扣罚", "保底工资补足",
                                   "团队奖金池分配", "末位预警扣减"])])
    run = plan.evaluate([{"payee": p, "period": "2026-05", "group": "福州大客户",
                          "metrics": {"销售额": v}}
                         for p, v in [("张三", 100), ("李四四", 12345), ("e\u0301", 7)]])
    for limit in (40, 60, 80, 100, 200):
        text = run.to_table(width=limit)
        lines = text.splitlines()
        assert all(wcswidth(line) <= limit for line in lines), (limit, text)
        # every amount ends in the column where its header ends
        header, rule = lines[0], lines[1]
        ends = [i for i in range(1, len(rule) + 1) if rule[i - 1] == "-" and rule[i:i + 1] != "-"]
        for line in [header, *lines[2:6]]:
            cells = [c for c in line.split("  ") if c]
            right = [wcswidth(line[:line.index(c) + len(c)]) for c in cells]
            assert set(right[3:]) <= set(ends), (limit, line)
    assert run.to_table(width=40).splitlines()[-1].startswith(" ")  # a wrapped note
    assert "6 columns left out to fit 40 characters: p0, p1, p2, p3, p4, p5" in " ".join(
        run.to_table(width=40).split())


def test_long_payees_and_groups_are_cut_to_fit_the_width() -> None:
    """A 300-character payee made every line 500 columns wide whatever COLUMNS said:
    in the default table, payee and group are cut (ending in …) to fit; ``all`` and
    named columns still show them whole."""
    plan = Plan(name="w", inputs={"metrics": {"sales": {}}},
                policies=[FormulaLine(id="bonus", amount="sales")])
    run = plan.evaluate([{"payee": "P" * 300, "period": "2026-05", "group": "组" * 100,
                          "metrics": {"sales": 1}},
                         {"payee": "Q", "period": "2026-05", "group": "g",
                          "metrics": {"sales": 2}}])
    assert run.to_table(width=40) == (
        "payee        period   group        total\n"
        "-----------  -------  -----------  -----\n"
        "PPPPPPPPPP…  2026-05  组组组组组…   1.00\n"
        "Q            2026-05  g             2.00\n"
        "                      total         3.00\n"
        "(1 column left out to fit 40 characters:\n"
        " bonus; --columns all shows every\n"
        " column, --format csv/json give\n"
        " everything)\n")
    for limit in (20, 60, 80, 120):
        assert max(wcswidth(line) for line in run.to_table(width=limit).splitlines()) <= max(
            limit, 36)
    assert "P" * 300 in run.to_table(width=40, columns="all")
    assert "组" * 100 in run.to_table(width=40, columns="payee,group")


def test_console_script_runs_as_a_module(examples: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "incentives", "run", str(examples / "bank/plan.yaml"),
         str(examples / "bank/records.json"), "--format", "csv"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "P,2026-05,gulou-branch,5000.00,3888.00,8888.00,," in proc.stdout


def test_run_renders_its_output_with_the_collector_paused(  # type: ignore[no-untyped-def]
        examples: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    import incentives.cli as cli_module
    import incentives.output as output_module

    seen = []
    render = cli_module.render
    add = output_module.CsvWriter.add

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return render(*args, **kwargs)

    def spy_add(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        return add(*args, **kwargs)

    monkeypatch.setattr(cli_module, "render", spy)
    monkeypatch.setattr(output_module.CsvWriter, "add", spy_add)
    assert gc.isenabled()
    # the table is rendered whole; csv (json, the sinks) written a period at a time
    for fmt in ("table", "csv"):
        r = cli("run", examples / "telecom" / "plan.yaml",
                examples / "telecom" / "records.jsonl", "--format", fmt)
        assert r.code == 0, r.err
    assert seen == [False, False]  # paused while the output is rendered
    assert gc.isenabled()  # and resumed after
