"""Property: every statement of every generated population recomputes by hand to its total,
in both languages, and its HTML is well formed."""

from __future__ import annotations

import html.parser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incentives import load_plan
from incentives.explain import build_statement, recompute
from incentives.testing.strategies import populations

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PLANS = {name: load_plan(EXAMPLES / name / "plan.yaml") for name in ("telecom", "bank", "tobacco")
         if (EXAMPLES / name / "plan.yaml").exists()}


class _Balanced(html.parser.HTMLParser):
    VOID = {"meta", "br"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack
        assert self.stack.pop() == tag


@pytest.mark.parametrize("name", sorted(PLANS))
def test_generated_statements_recompute(name: str) -> None:
    plan = PLANS[name]

    @given(populations(plan, max_size=5), st.sampled_from(["en", "zh"]))
    def check(records: list[dict[str, Any]], lang: str) -> None:
        run = plan.evaluate(records, errors="collect")
        for r in run:
            assert recompute(r.explain(lang=lang), lang=lang) == r.total
            assert build_statement(r).fallbacks == []
            parser = _Balanced()
            parser.feed(r.explain(format="html", lang=lang))
            parser.close()
            assert parser.stack == []

    check()


def test_recompute_refuses_a_wrong_figure() -> None:
    plan = PLANS["telecom"]
    x = plan.evaluate([{"payee": "X", "period": "2026-05",
                        "metrics": {"traffic_revenue": 50000, "new_fax": 3}}])["X"]
    text = x.explain()
    with pytest.raises(ValueError, match="does not add up"):
        recompute(text.replace("3 x 60 = 180.00", "3 x 60 = 190.00"))
    with pytest.raises(ValueError, match="is not the sum of the lines"):
        recompute(text.replace("Total: 1,400.00 + 180.00 + 0.00 + 0.00 = 1,580.00",
                               "Total: 1,400.00 + 180.00 + 0.00 + 0.00 = 1,590.00"))
