"""What the web app shows, as tidy DataFrames: one function per view, computed from a run's
records (the live model's, or the finished reference run's) without drawing anything.

A `run` is anything with the model's `records`, `start_month`, `step_index`, `nation_ids`,
`vendor_ids` and `scenario`: a `ComputeMarket` in progress or finished. Columns carry their
unit in their name, as the CLI's tables do (`market/outputs.py`); the CSV export writes these
frames as they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.summary import MARKERS, input_price_levels, price_flag
from market.timeline import format_month, month_start, parse_month
from market.world import HEADLINE_INSTRUMENT, HOURS_PER_MONTH

REGIONS = ("US", "China", "EU", "JKT", "RoW")
#: The price series of one region: tier and instrument (`market.outputs.INSTRUMENTS`).
SERIES = {("hyperscaler", "list"): "hyperscaler list", ("hyperscaler", "contract"):
          "hyperscaler 1-yr contract", ("neocloud", "contract"): "neocloud 1-yr contract",
          ("neocloud", "spot"): "neocloud spot"}
#: Months summed for the shipment shares and the network's flows (a year).
WINDOW_MONTHS = 12
THIS_RUN, REFERENCE = "this run", "reference (no levers)"
#: Two event markers closer than this write their labels on either side of their lines.
LABEL_GAP_DAYS = 100


def dates(run, steps) -> pd.DatetimeIndex:
    """First day of each step's month."""
    first = run.start_month - 1
    return pd.DatetimeIndex([month_start(first + int(s)) for s in steps])


def span(run, months: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and the last month of a run of `months` months, for the date axes."""
    return (pd.Timestamp(month_start(run.start_month)),
            pd.Timestamp(month_start(run.start_month + months - 1)))


def _frame(run, table: str, columns: list[str]) -> pd.DataFrame:
    rows = run.records[table]
    frame = pd.DataFrame([r[:len(columns)] for r in rows], columns=columns)
    frame.insert(0, "date", dates(run, frame["step"]))
    return frame


def prices(run, region: str = "US") -> pd.DataFrame:
    """The H100e-hour price of `region` by tier and instrument: hyperscaler list and 1-year
    contract, neocloud spot and 1-year contract."""
    f = _frame(run, "price_index", ["step", "region", "tier", "instrument",
                                    "price_usd_per_h100e_hour"])
    f = f[f["region"] == region].copy()
    f["series"] = [SERIES.get((t, i), f"{t} {i}") for t, i in zip(f["tier"], f["instrument"])]
    return f.reset_index(drop=True)


def headline_prices(run) -> pd.DataFrame:
    """Each region's headline prices: hyperscaler list and neocloud spot."""
    f = _frame(run, "price_index", ["step", "region", "tier", "instrument",
                                    "price_usd_per_h100e_hour"])
    f = f[f["region"].isin(REGIONS) & (f["instrument"] == f["tier"].map(HEADLINE_INSTRUMENT))]
    f = f.copy()
    f["series"] = f["tier"] + " " + f["instrument"]
    return f.reset_index(drop=True)


def compute(run) -> pd.DataFrame:
    """Installed H100e and its share by nation, with demand and unmet demand."""
    return _frame(run, "compute", ["step", "nation", "installed_h100e", "share",
                                   "frontier_run_flop", "demand_h100e_hours",
                                   "unmet_h100e_hours"])


def vendor_shares(run) -> pd.DataFrame:
    """Each vendor's share of the H100e shipped in the last 12 months [fraction]."""
    f = _frame(run, "vendors", ["step", "vendor", "shipped_units", "shipped_h100e"])
    if f.empty:
        return pd.DataFrame(columns=["date", "step", "vendor", "share_of_shipped_h100e_12m"])
    wide = f.pivot(index="step", columns="vendor", values="shipped_h100e").rolling(
        WINDOW_MONTHS, min_periods=1).sum()
    share = wide.div(wide.sum(axis=1).replace(0.0, np.nan), axis=0).fillna(0.0)
    out = share.reset_index().melt(id_vars="step", var_name="vendor",
                                   value_name="share_of_shipped_h100e_12m")
    out.insert(0, "date", dates(run, out["step"]))
    return out


def _domestic_vendors(run, nation: str = "China") -> set[str]:
    return {v for v, spec in run.scenario.vendors.items() if spec.nation == nation}


def china_inflows(run) -> pd.DataFrame:
    """H100e reaching China each month, by vendor and channel: legal shipments, stockpiling
    ahead of a rule, diversion (smuggling); the vendor's origin (domestic or foreign)."""
    f = _frame(run, "vendor_flows", ["step", "channel", "vendor", "nation", "h100e"])
    f = f[f["nation"] == "China"].copy()
    home = _domestic_vendors(run)
    f["origin"] = np.where(f["vendor"].isin(home), "domestic", "foreign")
    return f.rename(columns={"h100e": "h100e_per_month"}).reset_index(drop=True)


def domestic_share(run) -> pd.DataFrame:
    """China's domestic vendors' share of the H100e installed in China in the last 12 months
    [fraction], every channel counted."""
    f = china_inflows(run)
    if f.empty:
        return pd.DataFrame(columns=["date", "step", "domestic_share_of_new_h100e_12m"])
    wide = f.pivot_table(index="step", columns="origin", values="h100e_per_month",
                         aggfunc="sum").reindex(columns=["domestic", "foreign"]).fillna(0.0)
    wide = wide.reindex(range(1, run.step_index + 1), fill_value=0.0).rolling(
        WINDOW_MONTHS, min_periods=1).sum()
    total = wide.sum(axis=1)
    share = (wide["domestic"] / total.replace(0.0, np.nan)).fillna(0.0)
    out = pd.DataFrame({"step": share.index, "domestic_share_of_new_h100e_12m": share.values})
    out.insert(0, "date", dates(run, out["step"]))
    return out


def china_leakage(run) -> pd.DataFrame:
    """Compute reaching China around the controls each month: chips diverted (smuggled)
    [H100e per month] and compute its labs rent abroad [H100e]."""
    f = _frame(run, "flows", ["step", "channel", "origin", "destination", "h100e"])
    f = f[(f["destination"] == "China") & f["channel"].isin(["diversion", "remote_access"])]
    names = {"diversion": "chips diverted [H100e/month]",
             "remote_access": "compute rented abroad [H100e]"}
    out = f.groupby(["step", "channel"], as_index=False)["h100e"].sum()
    full = pd.MultiIndex.from_product([range(1, run.step_index + 1), list(names)],
                                      names=["step", "channel"])
    out = out.set_index(["step", "channel"]).reindex(full, fill_value=0.0).reset_index()
    out["series"] = out["channel"].map(names)
    out.insert(0, "date", dates(run, out["step"]))
    return out


def china_share(run) -> pd.DataFrame:
    c = compute(run)
    return c[c["nation"] == "China"][["date", "step", "installed_h100e", "share"]].reset_index(
        drop=True)


# ----------------------------------------------------------------------- network ---

#: What a network edge's `h100e` is, by flow: a 12-month sum of chips, or an average of the
#: capacity in use over the same 12 months.
MEASURES = {"chips": "H100e shipped in 12 months",
            "chips diverted": "H100e diverted in 12 months",
            "GPU-hours sold": "average H100e busy over 12 months",
            "rented abroad": "average H100e rented over 12 months"}


def network(run, top_clouds: int = 6) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The last 12 months' flows as nodes (fixed positions by role: vendors on the left,
    nations on a ring in the middle, the largest clouds on the right) and edges in H100e:
    vendors -> nations (chips shipped, by channel), clouds -> their region (GPU-hours sold,
    as average H100e busy), regions -> nations (compute rented abroad, average H100e); each
    edge's `measure` says which (`MEASURES`)."""
    since = run.step_index - WINDOW_MONTHS + 1
    edges: dict[tuple[str, str, str], float] = {}

    def add(a, b, kind, h):
        if h > 0 and a != b:
            edges[(a, b, kind)] = edges.get((a, b, kind), 0.0) + float(h)

    for step, channel, vendor, nation, h in run.records["vendor_flows"]:
        if step >= since:
            add(vendor, nation, "chips diverted" if channel == "diversion" else "chips", h)
    months = max(1, min(WINDOW_MONTHS, run.step_index))
    for step, channel, origin, dest, h in run.records["flows"]:
        if step >= since and channel == "remote_access":
            add(origin, dest, "rented abroad", h / months)
    sold: dict[tuple[str, str], float] = {}
    for step, cloud, region, _, _, sold_h, _, _ in run.records["clouds"]:
        if step >= since:
            sold[(cloud, region)] = sold.get((cloud, region), 0.0) + sold_h
    top = sorted(sold.items(), key=lambda kv: -kv[1])[:top_clouds]
    for (cloud, region), h in top:
        add(cloud, region, "GPU-hours sold", h / HOURS_PER_MONTH / months)
    nodes = []
    for k, v in enumerate(run.vendor_ids):
        nodes.append((v, "vendor", 0.0, 1.0 - (k + 0.5) / len(run.vendor_ids)))
    n = len(run.nation_ids)
    for k, nation in enumerate(run.nation_ids):
        angle = np.pi / 2 - 2 * np.pi * k / n
        nodes.append((nation, "nation", 1.0 + 0.28 * np.cos(angle), 0.5 + 0.42 * np.sin(angle)))
    for k, ((cloud, _), _) in enumerate(top):
        nodes.append((cloud, "cloud", 2.0, 1.0 - (k + 0.5) / max(1, len(top))))
    nodes_f = pd.DataFrame(nodes, columns=["node", "role", "x", "y"])
    pos = {r.node: (r.x, r.y) for r in nodes_f.itertuples()}
    rows = [(a, b, kind, h, MEASURES[kind], kind in ("chips diverted", "rented abroad"),
             *pos[a], *pos[b])
            for (a, b, kind), h in edges.items() if a in pos and b in pos]
    edges_f = pd.DataFrame(rows, columns=["source", "target", "flow", "h100e", "measure",
                                          "leakage", "x", "y", "x2", "y2"])
    edges_f["xm"] = (edges_f["x"] + edges_f["x2"]) / 2
    edges_f["ym"] = (edges_f["y"] + edges_f["y2"]) / 2
    return nodes_f, edges_f.sort_values("h100e", ascending=False).reset_index(drop=True)


# ------------------------------------------------------------------ policy, events ---

def policy(run) -> pd.DataFrame:
    """What happened to the rules so far: each event and each vendor response, with the
    rules in force after it."""
    return _frame(run, "policy", ["step", "nation", "kind", "what", "rules_in_force"])


#: What a supply shock of each kind hits, for its marker's name; these shocks also mark their end.
SHOCK_SUBJECTS = {"foundry_shock": lambda e: e.foundry, "hbm_shortage": lambda e: "HBM",
                  "power_constraint": lambda e: f"power {e.nation}"}


def _event_label(event) -> str:
    kind = event.kind
    if kind == "export_control":
        return f"{event.rule}{' lifted' if event.action == 'lift' else ''}"
    if kind in SHOCK_SUBJECTS:
        return f"{SHOCK_SUBJECTS[kind](event)} x{event.factor:g}, {event.months} mo"
    if kind == "demand_shock":
        return f"demand x{event.factor:g}"
    if kind == "efficiency_shock":
        return f"efficiency x{event.factor:g}"
    if kind == "remote_access":
        return f"remote access {'open' if event.allowed else 'closed'}"
    return kind.replace("_", " ")


def events(run, months: int) -> pd.DataFrame:
    """The scenario's dated events inside the run, for the time charts' markers: the month,
    a short name and the scenario's note. A shock also marks its end."""
    first = run.start_month
    last = first + months - 1
    rows = []
    for event in run.scenario.events:
        m = parse_month(event.date)
        note = event.note or ""
        if first <= m <= last:
            rows.append((pd.Timestamp(month_start(m)), _event_label(event), event.kind, note))
        if event.kind in SHOCK_SUBJECTS and first <= m + event.months <= last:
            rows.append((pd.Timestamp(month_start(m + event.months)),
                         f"{SHOCK_SUBJECTS[event.kind](event)} ends", event.kind, note))
    out = pd.DataFrame(rows, columns=["date", "event", "kind", "note"])
    # events of the same month share one marker (their labels would overlap); a marker close
    # after another writes its label on the other side of its line (`lane` 1)
    out = out.groupby("date", as_index=False, sort=True).agg(
        {"event": " + ".join, "kind": " + ".join, "note": " | ".join})
    lanes, previous, lane = [], None, 0
    for d in out["date"]:
        close = previous is not None and (d - previous).days < LABEL_GAP_DAYS
        lane = 1 - lane if close else 0
        lanes.append(lane)
        previous = d
    return out.assign(lane=lanes)


# ------------------------------------------------------------------ key figures ---

def _at(run, step: int) -> dict[str, float]:
    """The key figures of one month of a run, by name (with the unit in the name)."""
    out = {}
    for s, region, tier, instrument, price in run.records["price_index"]:
        if s == step and region in ("US", "China", "EU"):
            out[f"price {region} {SERIES.get((tier, instrument), tier + ' ' + instrument)}"
                " [USD/H100e-h]"] = price
    for s, nation, installed, share, *_ in run.records["compute"]:
        if s == step and nation in ("US", "China", "EU", "Gulf"):
            out[f"share of installed H100e {nation} [%]"] = 100 * share
    unmet = sum(r[6] for r in run.records["compute"] if r[0] == step)
    out["unmet demand [H100e-hours]"] = unmet
    flows = [r for r in run.records["flows"] if r[0] == step and r[3] == "China"]
    out["chips diverted to China this month [H100e]"] = sum(
        r[4] for r in flows if r[1] == "diversion")
    out["compute China's labs rent abroad [H100e]"] = sum(
        r[4] for r in flows if r[1] == "remote_access")
    out["H100e shipped to China this month [H100e]"] = sum(
        r[4] for r in run.records["vendor_flows"] if r[0] == step and r[3] == "China")
    return out


def price_marks(run) -> dict[str, str]:
    """Footnote markers of this month's headline prices (`market.summary.price_flag`): `*` on
    a price input of the scenario (this month and last), `#` when nothing traded."""
    step = run.step_index
    if step == 0:
        return {}
    levels = input_price_levels(run.scenario)
    sold: dict[tuple[str, str], float] = {}
    for s, _, region, tier, _, sold_h, _, _ in run.records["clouds"]:
        if s == step:
            sold[(region, tier)] = sold.get((region, tier), 0.0) + sold_h
    before, now = {}, {}
    for s, region, tier, instrument, price in run.records["price_index"]:
        if instrument == HEADLINE_INSTRUMENT[tier] and s in (step - 1, step):
            (now if s == step else before)[(region, tier)] = price
    marks = {}
    for (region, tier), price in now.items():
        flag = price_flag(price, levels, sold.get((region, tier), 0.0),
                          previous=before.get((region, tier)))
        if flag in MARKERS and region in ("US", "China", "EU"):
            name = SERIES[(tier, HEADLINE_INSTRUMENT[tier])]
            marks[f"price {region} {name} [USD/H100e-h]"] = MARKERS[flag]
    return marks


def key_figures(run, reference=None) -> pd.DataFrame:
    """This month's key figures beside the reference run's at the same month, with the
    difference (absolute and in %)."""
    step = run.step_index
    now = _at(run, step) if step > 0 else {}
    ref = _at(reference, step) if reference is not None and step > 0 else {}
    rows = []
    for name, value in now.items():
        r = ref.get(name, np.nan)
        diff = value - r
        pct = 100 * diff / r if np.isfinite(r) and abs(r) > 1e-12 else np.nan
        rows.append((name, value, r, diff, pct))
    return pd.DataFrame(rows, columns=["figure", "this_run", "reference", "difference",
                                       "difference_pct"])


def with_reference(live: pd.DataFrame, reference: pd.DataFrame | None) -> pd.DataFrame:
    """What a chart shows, for its CSV: the live run's rows and the reference run's, told
    apart by a `run` column."""
    parts = [live.assign(run=THIS_RUN)]
    if reference is not None:
        parts.append(reference.assign(run=REFERENCE))
    return pd.concat(parts, ignore_index=True)


def with_bands(shown: pd.DataFrame, bands: pd.DataFrame | None) -> pd.DataFrame:
    """What a chart shows with the ensemble's bands under it, for its CSV: the bands'
    quantiles (`ensemble_p5` ... `ensemble_p95`, in the shown column's unit) as columns by
    month."""
    if bands is None or bands.empty:
        return shown
    q = bands[["date", "p5", "p25", "p50", "p75", "p95"]].copy()
    q.columns = ["date"] + [f"ensemble_{c}" for c in ("p5", "p25", "p50", "p75", "p95")]
    return shown.merge(q, on="date", how="left")


def month_name(run) -> str:
    return format_month(run.month) if run.step_index > 0 else "not started"
