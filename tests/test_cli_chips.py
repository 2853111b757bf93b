"""`gpumarket chips` shows each published figure's confidence tag, in text and JSON (issue 10).

The expected tags are read straight from `market/data/chips.toml` with tomllib, not through
the catalog loader under test.
"""

import json
import tomllib
from pathlib import Path

from click.testing import CliRunner

from market.cli import cli

DATA = Path(__file__).resolve().parent.parent / "market" / "data" / "chips.toml"
#: table columns that show a published figure -> its field in chips.toml
TAGGED_COLUMNS = {"launch": "launch", "BF16 TFLOP/s": "dense_tflops_bf16", "mem GB": "memory_gb",
                  "mem GB/s": "memory_bandwidth_gbps", "link GB/s": "interconnect_gbps",
                  "TDP W": "tdp_w", "price USD": "unit_price_usd"}


def _data() -> dict:
    return tomllib.loads(DATA.read_text())["chips"]


def _run(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_chips_json_gives_every_sourced_field_its_confidence_tag():
    records = {r["id"]: r for r in json.loads(_run("chips", "--json"))}
    data = _data()
    assert set(records) == set(data)
    for chip_id, entry in data.items():
        expected = {f: v["conf"] for f, v in entry.items() if isinstance(v, dict) and "conf" in v}
        assert records[chip_id]["confidence"] == expected, chip_id
        assert set(records[chip_id]["confidence"]) == set(records[chip_id]["sources"]), chip_id
        notes = {f: v["note"] for f, v in entry.items() if isinstance(v, dict) and "note" in v}
        assert records[chip_id]["notes"] == notes, chip_id


def test_chips_table_puts_the_tag_after_each_published_figure():
    out = _run("chips").splitlines()
    header = out[0]
    rows = {line.split()[0]: line for line in out[1:] if line and line.split()[0] in _data()}
    data = _data()
    # columns are right-aligned after `launch`; split the table on two or more spaces
    names = [c for c in header.split("  ") if c.strip()]
    names = [n.strip() for n in names]
    for chip_id, line in rows.items():
        cells = [c.strip() for c in line.split("  ") if c.strip()]
        by_column = dict(zip(names, cells))
        for column, field in TAGGED_COLUMNS.items():
            cell = by_column[column]
            if cell == "n/a":
                assert field not in data[chip_id], (chip_id, column)
                continue
            assert cell.endswith(" " + data[chip_id][field]["conf"]), (chip_id, column, cell)
        for computed in ("TPP", "TPP/mm2", "H100e"):       # computed figures carry no tag
            assert by_column[computed][-1].isdigit() or by_column[computed] == "n/a"
    assert " 989 H " in rows["h100-sxm"]
    assert "ascend-910b" in rows and " 320 L" in rows["ascend-910b"]
    assert any(line.startswith("After each published figure, its confidence: H primary")
               for line in out)
