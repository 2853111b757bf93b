"""Convert Epoch AI's chip-count estimates into gpumarket's tidy observed-data format.

    python scripts/import_observed.py SOURCE_DIR

SOURCE_DIR holds Epoch AI's quarterly CSVs (accelerator shipments by vendor and chip, NVIDIA
shipments by owner, NVIDIA revenue per fiscal quarter; repository epoch-research/ai-chip-counts,
commit d1b1bc3). The script writes `market/data/observed/epoch_*.csv`, one observation per row
with the columns of `market.observed.COLUMNS`. It was run once to make the shipped files; it is
kept so their provenance can be checked and the import repeated on a newer release.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "market" / "data" / "observed"
COLUMNS = ["series", "period", "start", "end", "value", "low", "high", "unit", "source",
           "confidence", "note"]
EPOCH = ("Epoch AI, AI Chip Sales / ai-chip-counts (github.com/epoch-research/ai-chip-counts, "
         "commit d1b1bc3, CC BY 4.0)")
QUARTER_END = {1: "03-31", 2: "06-30", 3: "09-30", 4: "12-31"}


def quarter_bounds(label: str) -> tuple[str, str]:
    year, q = int(label[:4]), int(label[-1])
    return f"{year}-{3 * q - 2:02d}-01", f"{year}-{QUARTER_END[q]}"


def slug(text: str) -> str:
    return text.strip().replace(" ", "_")


def shipments(src: Path) -> list[dict]:
    rows = []
    with (src / "accelerator_shipments_quarterly.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            start, end = quarter_bounds(r["quarter"])
            for measure, unit in (("units", "units"), ("h100e", "H100e")):
                rows.append({
                    "series": f"shipped_{measure}:{r['vendor']}:{slug(r['chip'])}",
                    "period": r["quarter"], "start": start, "end": end,
                    "value": r[f"{measure}_median"], "low": r[f"{measure}_p5"],
                    "high": r[f"{measure}_p95"], "unit": unit, "source": EPOCH,
                    "confidence": "M",
                    "note": ("median and 5-95% interval of Epoch's Monte Carlo"
                             + ("; incomplete quarter" if r["note"] else ""))})
    return rows + vendor_totals(rows)


def vendor_totals(rows: list[dict]) -> list[dict]:
    """A vendor's quarter across its chips (`...:<vendor>:all`). Percentiles do not add: the
    sums of the chips' 5th and 95th percentiles give an interval wider than the total's own,
    which is the honest side to err on when scoring against it."""
    totals: dict[tuple, dict] = {}
    for r in rows:
        family, vendor, _chip = r["series"].split(":")
        key = (family, vendor, r["period"])
        t = totals.setdefault(key, dict(r, series=f"{family}:{vendor}:all", value=0.0, low=0.0,
                                        high=0.0, confidence="D",
                                        note="sum over the vendor's chips: medians, and sums of "
                                             "the 5th / 95th percentiles (a wider interval)"))
        for col in ("value", "low", "high"):
            t[col] += float(r[col])
    out = []
    for key in sorted(totals):
        t = totals[key]
        out.append(dict(t, **{col: f"{t[col]:.0f}" for col in ("value", "low", "high")}))
    return out


def owners(src: Path) -> list[dict]:
    rows = []
    with (src / "nvidia_shipments_by_owner_quarterly.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            start, end = quarter_bounds(r["quarter"])
            for measure, unit in (("units", "units"), ("h100e", "H100e")):
                rows.append({
                    "series": f"nvidia_bought_{measure}:{slug(r['owner'])}",
                    "period": r["quarter"], "start": start, "end": end,
                    "value": r[f"{measure}_median"], "low": r[f"{measure}_p5"],
                    "high": r[f"{measure}_p95"], "unit": unit, "source": EPOCH,
                    "confidence": "M",
                    "note": "NVIDIA data-centre GPUs bought; median and 5-95% interval"})
    return rows


def revenue(src: Path) -> list[dict]:
    rows = []
    names = {"total_revenue_usd_b": "total", "datacenter_revenue_usd_b": "datacenter",
             "datacenter_networking_revenue_usd_b": "datacenter_networking",
             "datacenter_compute_revenue_usd_b": "datacenter_compute"}
    with (src / "nvidia_revenue_quarterly.csv").open(newline="") as fh:
        for r in csv.DictReader(fh):
            for column, name in names.items():
                if not r[column]:
                    continue                     # not reported for that quarter
                rows.append({
                    "series": f"nvidia_revenue_usd:{name}", "period": r["fiscal_quarter"],
                    "start": r["start"], "end": r["end"],
                    "value": f"{float(r[column]) * 1e9:.0f}", "low": "", "high": "",
                    "unit": "USD", "source": "NVIDIA quarterly results, as collected by " + EPOCH,
                    "confidence": "H", "note": "fiscal quarter"})
    return rows


def write(name: str, rows: list[dict]) -> None:
    with (OUT / name).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    src = Path(argv[0])
    write("epoch_shipments.csv", shipments(src))
    write("epoch_nvidia_owners.csv", owners(src))
    write("nvidia_revenue.csv", revenue(src))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
