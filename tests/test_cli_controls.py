"""`gpumarket controls`, `chips --rule` and `compare` through click's CliRunner."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from market.cli import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("chip,dest,date,treatment,words", [
    ("a100", "China", "2022-12", "prohibited", ["oct2022", "TPP 4,992 >= 4,800",
                                               "chip-to-chip I/O 600 GB/s >= 600", "PROHIBITED"]),
    ("h100", "China", "2022-12", "prohibited", ["3A090 (2022)", "PROHIBITED"]),
    ("a800", "China", "2023-03", "allowed", ["Not controlled", "chip-to-chip I/O >= 600 GB/s "
                                            "(this chip: 400 GB/s)"]),
    ("h800", "China", "2023-12", "prohibited", ["oct2023", "3A090.a", "TPP 15,831 >= 4,800"]),
    ("h20", "China", "2024-06", "allowed", ["Not controlled", "TPP >= 2,400 (this chip: 2,368)"]),
    ("h20", "China", "2025-05", "licence", ["h20-apr2025", "named product",
                                           "none are being granted"]),
    ("h20", "China", "2025-09", "licence", ["15% of the sale price goes to the US government"]),
    ("h200", "China", "2026-02", "case_by_case", ["CASE-BY-CASE", "50% of the volume sold",
                                                  "25% of the sale price"]),
    ("h100", "UAE", "2024-03", "licence", ["D4", "LICENCE REQUIRED: about 50%"]),
    ("h100", "Japan", "2024-03", "allowed", ["allied", "no licence is needed"]),
    ("h100", "China", "2022-06", "allowed", ["No export-control rule on AI chips is in force"]),
])
def test_controls_explains_each_case(chip, dest, date, treatment, words):
    r = run("controls", chip, "--destination", dest, "--date", date)
    assert r.exit_code == 0, r.output
    for w in words:
        assert w in r.output, (w, r.output)
    j = json.loads(run("controls", chip, "--destination", dest, "--date", date, "--json").output)
    assert j["treatment"] == treatment


def test_controls_follows_a_scenario_timeline():
    real = json.loads(run("controls", "b200", "--destination", "India", "--date", "2026-01",
                          "--json").output)
    kept = json.loads(run("controls", "b200", "--destination", "India", "--date", "2026-01",
                          "--scenario", "diffusion-rule-kept", "--json").output)
    assert real["treatment"] == "allowed"
    assert kept["treatment"] == "licence" and kept["cap_h100e"] == pytest.approx(49901)
    closed = run("controls", "h100", "--destination", "China", "--date", "2026-03",
                 "--scenario", "cloud-loophole-closed")
    assert "Remote access (renting foreign clouds) for this destination: CLOSED" in closed.output


@pytest.mark.parametrize("args,message", [
    (["controls", "h100", "--destination", "Atlantis", "--date", "2024-01"],
     "unknown destination 'Atlantis'"),
    (["controls", "h100", "--destination", "China", "--date", "2024-13"], "--date"),
    (["controls", "h999", "--destination", "China", "--date", "2024-01"], "unknown chip"),
    (["chips", "--rule", "oct2099"], "unknown export-control rule 'oct2099'"),
    (["compare", "history"], "at least two scenarios"),
    (["compare", "history", "nope"], "unknown scenario 'nope'"),
    (["compare", "history", "no-controls", "--dates", "2029-01"],
     "2029-01; expected a month within the run all scenarios share, 2022-01 to 2026-06"),
    # one date outside among good ones is refused too, not silently left out
    (["compare", "history", "no-controls", "--dates", "2023-06,2029-01"],
     "'--dates': 2029-01; expected months within the run all scenarios share"),
    # exactly YYYY-MM: a one-digit month is not taken for another spelling of 2024-06
    (["controls", "h100", "--destination", "China", "--date", "2024-6"],
     "'--date': '2024-6' is not a month written YYYY-MM"),
    # a scenario's timeline says nothing of a month it does not run
    (["controls", "h100", "--destination", "China", "--scenario", "history", "--date",
      "2040-06"], "'--date': 2040-06; expected a month within scenario history's run, 2022-01 "
                  "to 2026-06"),
])
def test_bad_input_exits_2_with_one_line(args, message):
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.output


def test_chips_rule_column():
    r = run("chips", "--rule", "oct2022")
    assert r.exit_code == 0
    rows = {line.split()[0]: line for line in r.output.splitlines()[1:19]}
    assert rows["a100"].rstrip().endswith("prohibited")
    assert rows["a800"].rstrip().endswith("-")
    j = json.loads(run("chips", "--rule", "oct2023", "--json").output)
    h20 = next(c for c in j if c["id"] == "h20")
    assert h20["controls"]["by_group"]["D5"]["treatment"] == "allowed"
    a800 = next(c for c in j if c["id"] == "a800")
    assert a800["controls"]["by_group"]["D5"]["treatment"] == "prohibited"
    case = json.loads(run("chips", "--rule", "jan2026-case-by-case", "--json").output)
    h200 = next(c for c in case if c["id"] == "h200")
    assert h200["controls"]["by_group"]["D5"]["treatment"] == "case_by_case"


def test_compare_prints_side_by_side_and_writes_tables_and_plot(tmp_path):
    out = tmp_path / "cmp"
    r = run("compare", "history", "no-controls", "cloud-loophole-closed", "--dates",
            "2024-12,2026-06", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "history" in r.output and "no-controls" in r.output
    for row in ("price US neocloud", "share of installed H100e China", "vendor revenue",
                "largest completed run China", "chips diverted"):
        assert row in r.output
    table = pd.read_csv(out / "comparison.csv", index_col=0)
    assert list(table.columns) == [f"{d} {s}" for d in ("2024-12", "2026-06")
                                   for s in ("history", "no-controls", "cloud-loophole-closed")]
    china = "share of installed H100e China [%]"
    assert table.loc[china, "2024-12 no-controls"] > table.loc[china, "2024-12 history"]
    assert (out / "trajectories.png").stat().st_size > 20_000
    for name in ("history", "no-controls", "cloud-loophole-closed"):
        manifest = json.loads((out / name / "manifest.json").read_text())
        assert manifest["seed"] == 0 and "policy.parquet" in manifest["sha256"]
    again = CliRunner().invoke(cli, ["compare", "history", "no-controls", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_viz_bad_input_exits_2_without_a_server(tmp_path):
    import socket

    r = CliRunner().invoke(cli, ["viz", "nope", "--no-browser"])
    assert r.exit_code == 2 and "unknown scenario 'nope'" in r.output
    r = CliRunner().invoke(cli, ["viz", "--ensemble", str(tmp_path), "--no-browser"])
    assert r.exit_code == 2 and "not a readable Monte Carlo batch" in r.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(cli, ["viz", "--port", str(port), "--no-browser"])
    assert r.exit_code == 2 and f"port {port}" in r.output
