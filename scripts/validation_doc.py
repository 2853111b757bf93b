"""Regenerate docs/validation.md (and its figures) from the `history` scenario's backtest.

    python scripts/validation_doc.py           # write docs/validation.md and docs/validation/
    python scripts/validation_doc.py --check   # exit 1 (with a diff) if the text is stale

The text is deterministic (fixed seeds); tests/analysis/test_validation_doc.py runs --check.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "validation.md"
SCENARIO, SEEDS, UNTIL, DESIGN_RUNS = "history", 8, "2024-12", 12


def build() -> tuple[str, object]:
    from analysis.backtest import backtest
    from market import __version__
    from market.cli.backtest import _runs_from_seeds, scripted_outcomes
    from market.observed import load_observed
    from market.timeline import parse_month
    from scenarios.loader import load_scenario
    from analysis.backtest_report import validation_markdown

    scenario = load_scenario(SCENARIO).scenario
    months = min(scenario.months, parse_month(UNTIL) - parse_month(scenario.start) + 1)
    runs = _runs_from_seeds(scenario, SEEDS, months)
    result = backtest(load_observed(until=UNTIL), runs, scenario)
    scripted = scripted_outcomes(runs, scenario, UNTIL, DESIGN_RUNS, months)
    meta = {"scenario": SCENARIO, "seeds": SEEDS, "until": UNTIL,
            "gpumarket_version": __version__}
    return validation_markdown(result, scripted, meta), result


def main(argv: list[str]) -> int:
    text, result = build()
    if "--check" in argv:
        old = DOC.read_text() if DOC.exists() else ""
        if old != text:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                       str(DOC), "regenerated"))
            return 1
        return 0
    from analysis.backtest_report import DOC_FIGURES, _png, plot_series, slug

    figures = DOC.parent / "validation"
    figures.mkdir(exist_ok=True)
    for series, rows in result.aligned.groupby("series"):
        if series in DOC_FIGURES:
            (figures / f"{slug(series)}.png").write_bytes(_png(plot_series(rows)))
    DOC.write_text(text)
    print(f"wrote {DOC} and {len(DOC_FIGURES)} figures in {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
