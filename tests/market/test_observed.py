"""Observed data: the shipped files load and every malformed file is refused with the file,
the row and the field."""

from pathlib import Path

import pandas as pd
import pytest

from market.observed import (COLUMNS, ObservedDataError, families, load_observed, read_file,
                             split_by_until)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "observed"


def test_shipped_files_load_and_are_tidy():
    frame = load_observed()
    assert list(frame.columns[:len(COLUMNS)]) == COLUMNS
    assert frame["source"].str.len().min() > 0
    assert set(frame["confidence"]) <= {"H", "M", "L", "D"}
    # Epoch's three files and the calibration facts are all there
    assert {"epoch_shipments.csv", "epoch_nvidia_owners.csv", "nvidia_revenue.csv",
            "calibration_facts.csv"} <= set(frame["file"])
    assert frame["family"].nunique() >= 20
    # a quarter of Epoch's H100 shipments with its interval, copied as published
    h100 = frame[(frame["series"] == "shipped_units:nvidia:H100") & (frame["period"] == "2023Q4")]
    assert len(h100) == 1 and h100["low"].iloc[0] < h100["value"].iloc[0] < h100["high"].iloc[0]


def test_until_drops_later_rows_on_reading():
    everything = load_observed()
    inside = load_observed(until="2024-12")
    assert len(inside) < len(everything)
    assert inside["end"].max() <= pd.Timestamp("2024-12-31")
    # NVIDIA's fiscal Q4 2025 ends on 2025-01-26: after 2024-12, so never read with that line
    assert not (inside["period"] == "FY25Q4").any()
    a, b = split_by_until(everything, "2024-12")
    assert len(a) == len(inside) and (b["end"] > pd.Timestamp("2024-12-31")).all()


def test_valid_fixture():
    frame = read_file(FIXTURES / "valid.csv")
    assert frame["value"].tolist() == [100.0]


@pytest.mark.parametrize("name, expected", [
    ("unknown_series.csv", "row 2: field series: unknown series family"),
    ("wrong_unit.csv", "row 2: field unit: shipped_units is measured in 'units' (found 'H100e')"),
    ("bad_date.csv", "row 2: field end: expected a date YYYY-MM-DD (found '2023-13-31')"),
    ("missing_source.csv", "row 2: field source: every observation needs its source"),
    ("bad_header.csv", "row 1: header: missing low, high, confidence, note"),
    ("low_above_value.csv", "row 2: field low: above the value 100 (found '120')"),
])
def test_bad_files_name_file_row_and_field(name, expected):
    with pytest.raises(ObservedDataError) as info:
        read_file(FIXTURES / name)
    message = str(info.value)
    assert message.startswith(str(FIXTURES / name))
    assert expected in message


def test_a_directory_with_one_bad_file_is_refused_whole(tmp_path):
    (tmp_path / "good.csv").write_bytes((FIXTURES / "valid.csv").read_bytes())
    (tmp_path / "bad.csv").write_bytes((FIXTURES / "wrong_unit.csv").read_bytes())
    with pytest.raises(ObservedDataError, match="bad.csv: row 2: field unit"):
        load_observed(tmp_path)


def test_not_utf8_is_one_clear_line(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ObservedDataError, match="not UTF-8 text"):
        read_file(path)


def test_every_family_declares_unit_and_aggregation():
    for family in families().values():
        assert family.unit and family.aggregation in ("sum", "mean", "end", "max")
