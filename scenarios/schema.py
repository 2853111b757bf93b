"""The scenario schema: one declarative pydantic model of everything a run takes as input.

Every field has a type, bounds, a unit and a description; unknown keys are refused so a typo
fails loudly. Cross-references (a cloud in an unknown nation, a product naming an unknown chip,
an event outside the run) are checked by `scenarios.loader.check_references` before any run.

Vocabulary (EMA Workbench's): *uncertainties* are the `[uncertain]` distributions, *levers* are
policy choices (events, switches), *outcomes* are the output tables.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

from market.controls import Rule
from market.timeline import parse_month

#: A calendar month as text, YYYY-MM.
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
Month = Annotated[str, Field(pattern=MONTH_PATTERN, description="month, YYYY-MM")]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
GrowthRate = Annotated[float, Field(gt=-1, le=20, allow_inf_nan=False,
                                    description="growth per year as a fraction (0.3 = +30%/yr)")]


#: Most long-tail labs a scenario may generate [labs] (memory, see LongTail.count).
MAX_LONG_TAIL_LABS = 100_000
#: Youngest retirement age of chips [yr] (see Market.retire_after_years).
MIN_RETIRE_AFTER_YEARS = 2.0
#: A finite float, for parameters whose other bounds are checked elsewhere.
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_path(points: dict[str, float]) -> dict[str, float]:
    if not points:
        raise ValueError("needs at least one dated point")
    for key, value in points.items():
        parse_month(key)
        if not value >= 0 or value == float("inf"):
            raise ValueError(f"value at {key} must be a finite number >= 0")
    return points


PathPoints = Annotated[dict[str, float], Field(description="dated values {YYYY-MM = value}")]


class Path(_Model):
    """A dated path, log-linear between points, growing at `growth_after_per_year` after."""

    points: PathPoints
    growth_after_per_year: GrowthRate = 0.0

    @field_validator("points")
    @classmethod
    def _valid_points(cls, points: dict[str, float]) -> dict[str, float]:
        return _check_path(points)


class Nation(_Model):
    name: str = Field(description="display name")
    electricity_usd_per_kwh: Positive = Field(description="industrial electricity price [USD/kWh]")
    grid_kg_co2_per_kwh: NonNegative = Field(description="grid carbon intensity [kg CO2/kWh]")
    power_buildout_per_year: GrowthRate = Field(
        description="growth of the grid capacity it connects to datacenters [fraction/yr]: "
                    "its clouds' and labs' power, online and under construction, may grow "
                    "together at most this fast from what they had at the start")
    jurisdiction: str = Field(description="legal system whose export rules it issues, if any")
    controls_group: str = Field(description="destination group export-control rules refer to "
                                            "(e.g. 'US', 'allied', 'tier2', 'D5')")
    remote_regions: list[str] = Field(
        default_factory=list,
        description="foreign regions whose clouds its labs may rent when the remote-access "
                    "(IaaS) rule allows, in order of preference")
    domestic_chip_subsidy: Fraction = Field(
        default=0.0, description="share of the price of home vendors' chips the state pays "
                                 "for home buyers [fraction]")
    foreign_chip_weight: Annotated[float, Field(ge=0, le=1)] = Field(
        default=1.0, description="multiplier on home buyers' preference for foreign vendors "
                                 "(1 = no discouragement, 0 = foreign chips shunned) [-]")
    adaptive: list["AdaptivePolicy"] = Field(
        default_factory=list, description="policy rules that react to the world")


class AdaptivePolicy(_Model):
    """A controller's rule of reaction: when `trigger` passes `threshold`, impose or lift a
    rule (once, at most every `cooldown_months`)."""

    trigger: Literal["rival_installed_share_above", "rival_frontier_share_above",
                     "vendor_lost_revenue_above"] = Field(
        description="rival_installed_share_above: the rival's share of installed H100e [-]; "
                    "rival_frontier_share_above: the rival's share of this month's training "
                    "compute of the named (frontier) labs [-]; vendor_lost_revenue_above: "
                    "home vendors' sales blocked by export rules over the last 12 months [USD]")
    threshold: NonNegative
    rival: str | None = Field(default=None, description="nation id (for the rival triggers)")
    impose: str | None = Field(default=None, description="rule id to impose")
    lift: str | None = Field(default=None, description="rule id to lift")
    not_before: Month | None = Field(default=None, description="first month it may fire")
    cooldown_months: Annotated[int, Field(ge=1, le=600)] = 12
    repeat: bool = Field(default=False, description="may fire again after the cooldown")

    @model_validator(mode="after")
    def _does_something(self) -> "AdaptivePolicy":
        if (self.impose is None) == (self.lift is None):
            raise ValueError("give exactly one of impose or lift")
        if self.trigger.startswith("rival") and self.rival is None:
            raise ValueError(f"{self.trigger} needs a rival nation")
        return self


class Foundry(_Model):
    name: str
    nation: str
    capacity_wafers_per_month: Path = Field(description="advanced-packaging or AI-die capacity "
                                                        "[wafers/month]")
    vendor_shares: dict[str, Fraction] = Field(
        description="share of capacity each vendor gets [fraction]; the rest goes to "
                    "non-AI customers")
    yield_path: Path | None = Field(
        default=None, description="good-die yield relative to the products' packages_per_wafer "
                                  "[-] over time (e.g. SMIC 7 nm maturing); default 1")
    expansion_from: Month | None = Field(
        default=None, description="first month the foundry adds capacity of its own accord, in "
                                  "response to vendors' committed demand (after the observed "
                                  "and announced points of its capacity path); none = never "
                                  "(capacity follows the path only)")
    expansion_lag_months: Annotated[float, Field(ge=1, le=60, allow_inf_nan=False)] = Field(
        default=18.0, description="months from starting new capacity to its coming online "
                                  "[months], rounded to whole months; [A] 12-24 for a CoWoS "
                                  "line")
    expansion_threshold: Annotated[float, Field(ge=0, le=5, allow_inf_nan=False)] = Field(
        default=0.1, description="committed demand must exceed capacity (online and under "
                                 "construction) by this share before the foundry builds "
                                 "[fraction]; [A] 0-0.3")
    expansion_response: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        default=0.25, description="share of the gap between committed demand and capacity "
                                  "(online and under construction) started each month "
                                  "[1/month]; 0 = no expansion; [A] 0.1-0.5")
    demand_memory_months: Annotated[float, Field(ge=1, le=60, allow_inf_nan=False)] = Field(
        default=1.0, description="memory of the foundry's smoothed reading of vendors' "
                                 "committed demand (mean age of an adaptive expectation; 1 = "
                                 "this month's reading) [months]; [A] 1-12")
    expansion_trend_damping_per_month: Annotated[float, Field(ge=0, le=1,
                                                              allow_inf_nan=False)] = Field(
        default=0.0, description="damping of the trend of that reading (its growth over the "
                                 "past year) the foundry carries over the expansion lag: "
                                 "month i ahead carries f^i of it; 0 = plans for today's "
                                 "demand (myopic), 1 = undamped [-]")
    max_expansion_per_year: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] = Field(
        default=1.0, description="most new capacity the foundry starts in any 12 months, as a "
                                 "multiple of its capacity online [1/yr]; 1 = it at most "
                                 "doubles a year, as TSMC's CoWoS did in 2023-24 and planned "
                                 "for 2025 (the fastest observed); [A] 0.5-1.5")
    capex_usd_per_wafer_month: NonNegative = Field(
        default=200_000.0, description="capital cost of one wafer/month of new capacity "
                                       "[USD per wafer/month]; [A] 0.1-0.4 M")

    @model_validator(mode="after")
    def _shares_at_most_one(self) -> "Foundry":
        if sum(self.vendor_shares.values()) > 1.0 + 1e-9:
            raise ValueError("vendor_shares must sum to at most 1")
        return self


class Product(_Model):
    chip: str = Field(description="chip id from the catalog (gpumarket chips)")
    available: Month = Field(description="first month the product ships")
    end: Month | None = Field(default=None, description="last month the product ships")
    packages_per_wafer: Positive = Field(description="good packaged chips per wafer [chips/wafer]")
    unit_cost_usd: Positive = Field(description="vendor's cost to make one chip [USD]")
    list_price_usd: Positive | None = Field(
        default=None, description="list price [USD]; default: the catalog's unit price")
    mix_weight: Positive = Field(default=1.0, description="relative weight of the product's need "
                                                          "when the vendor's wafers do not "
                                                          "cover all its products' [-]")
    variant_of: str | None = Field(
        default=None, description="a compliant variant of this catalog chip (like A800 of A100): "
                                  "sold only where the parent is restricted, from the month the "
                                  "vendor responds (not before `available`)")


class Vendor(_Model):
    name: str
    nation: str
    foundry: str
    captive_to: list[str] = Field(default_factory=list,
                                  description="buyers (cloud or lab ids) it sells to exclusively; "
                                              "empty = open market")
    pricing: str = Field(
        default="backlog_markup", description="pricing rule by name (agents.vendor.PRICING): "
                                              "backlog_markup, list_price")
    scarcity_markup_per_backlog_month: NonNegative = Field(
        default=0.15, description="price rise per month of lead time, i.e. open orders its stock "
                                  "does not cover, in months of its own wafer capacity "
                                  "[fraction/month]; [A] 0.05-0.4")
    max_price_multiple: Annotated[float, Field(ge=1, le=10, allow_inf_nan=False)] = Field(
        default=1.6, description="cap on price over list [-]; [A] 1.2-2.5")
    glut_discount_per_stock_month: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = \
        Field(default=0.1, description="price cut per month of capacity nobody asked for: "
                                       "stock beyond open orders and the target inventory, "
                                       "plus this month's idle wafer allotment "
                                       "[fraction/month]; [A] 0.02-0.3")
    floor_margin: Annotated[float, Field(ge=0, le=20, allow_inf_nan=False)] = Field(
        default=0.5, description="lowest markup over unit cost a glut drives the price to "
                                 "[fraction]; [A] 0.2-2")
    rival_premium: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] = Field(
        default=0.25, description="premium over rivals' price per H100e the vendor holds before "
                                  "it cuts to defend share [fraction]; [A] 0-1")
    rival_response: Fraction = Field(
        default=0.5, description="elasticity of its target price to its price per H100e over "
                                 "rivals' (with the premium): 0 ignores rivals, 1 matches "
                                 "them [-]; [A] 0-1")
    price_adjustment_per_month: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = \
        Field(default=0.3, description="share of the gap to its target price closed each month "
                                       "[1/month] (1 = jumps); [A] 0.1-0.6")
    target_inventory_months: Annotated[float, Field(ge=0, le=12, allow_inf_nan=False)] = Field(
        default=0.5, description="finished stock it builds towards beyond open orders, in months "
                                 "of its last month's shipments per product [months]; "
                                 "[A] 0.25-2")
    compliant_variants: bool = Field(
        default=True, description="launches its declared compliant variants (products with "
                                  "`variant_of`, on their own dates) in markets where a rule "
                                  "restricts the parent")
    variant_lag_months: Annotated[int, Field(ge=0, le=60)] = Field(
        default=4, description="months from a product's restriction to a declared variant "
                               "shipping, never before its `available` date (A800: ~2 months "
                               "after the Aug 2022 letter; H20: ~2 after Nov 2023)")
    design_variants: bool = Field(
        default=False, description="also designs variants just under the rule thresholds "
                                   "where no declared one complies (a counterfactual: a chip "
                                   "no vendor made); off in the built-in scenarios")
    variant_design_months: Annotated[int, Field(ge=0, le=60)] = Field(
        default=9, description="months from a product's restriction to a designed variant "
                               "shipping: design, tape-out changes and qualification "
                               "[months]; [A] 6-12 (the H20 shipped ~5-6 months after the "
                               "Oct 2023 rule, a variant already in development)")
    variant_trigger: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        default=0.5, description="it launches a variant for a market when less than this share "
                                 "of a product's orders there may ship [fraction]: "
                                 "prohibitions and denied licences, not licences mostly "
                                 "granted; [A] 0.2-0.9")
    variant_price_base_share: Fraction = Field(
        default=0.3, description="share of the parent's list price a derived variant keeps "
                                 "whatever its performance; the rest scales with its TPP over "
                                 "the parent's [fraction]; [A] 0.1-0.5 (the H20, ~15% of an "
                                 "H100's TPP, listed near half its price)")
    hbm_dependence: Fraction = Field(
        default=0.0, description="share of its output that needs imported HBM [fraction]")
    hbm_stockpile_months: Annotated[int, Field(ge=0, le=120)] = Field(
        default=0, description="months of output its HBM stockpile covers once HBM is "
                               "controlled to its nation")
    opening_orders_units: dict[str, NonNegative] = Field(
        default_factory=dict, description="orders on its book when the run starts, by chip of "
                                          "one of its products on sale then [units]: placed "
                                          "and paid before the run, so the first month ships "
                                          "what it makes; shared among the buyers by their "
                                          "starting fleets of that chip")
    products: list[Product]


class Cloud(_Model):
    name: str
    nation: str = Field(description="region (= nation id) where its datacenters are")
    tier: Literal["hyperscaler", "neocloud"]
    power_mw: NonNegative = Field(description="AI datacenter power capacity at the start [MW]")
    power_pipeline_growth_per_year: GrowthRate = Field(
        description="growth rate of its capacity implied by the projects under way at the "
                    "start [fraction/yr], no faster than its nation's power_buildout_per_year: "
                    "they come online over the first market.power_build_lag_months; later "
                    "capacity is what it builds (an outcome)")
    power_projects_mw: dict[Month, NonNegative] = Field(
        default_factory=dict, description="announced projects it is handed {month online = "
                                          "MW} (inputs: dated programmes, built and paid for "
                                          "by them, after the start and by the end), on top "
                                          "of its own builds")
    fleet: dict[str, NonNegative] = Field(default_factory=dict,
                                          description="installed chips at the start {chip = units}")
    fleet_age_years: NonNegative = Field(default=1.0, description="average age of that fleet [yr]")
    financing_usd_per_year: Path = Field(
        description="outside money for AI accelerators it is handed: investors' equity or its "
                    "parent group's cash [USD/yr]; a ceiling on top of its own operating cash "
                    "flow and debt capacity, not what it spends (capex is an outcome)")
    wacc_per_year: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        description="cost of capital it discounts a new chip's earnings at [fraction/yr]")
    debt_to_revenue: Annotated[float, Field(ge=0, le=20, allow_inf_nan=False)] = Field(
        description="most debt it may carry, in years of trailing revenue [yr]; the debt is "
                    "repaid over the chips' life (retire_after_years)")
    vendor_preference: dict[str, Positive] = Field(description="relative weight of each vendor "
                                                               "in its orders [-]")
    pue: Annotated[float, Field(ge=1.0, le=3.0)] = Field(default=1.2, description="PUE [-]")
    min_margin: Annotated[float, Field(ge=-0.9, le=20)] = Field(
        description="lowest markup over full owned cost its asks go to [fraction]")
    max_margin: Annotated[float, Field(ge=-0.9, le=50)] = Field(
        description="highest markup over full owned cost [fraction]")
    initial_margin: Annotated[float, Field(ge=-0.9, le=50)] | None = Field(
        default=None, description="its markup at the start: the list price of the first month "
                                  "over full owned cost, less 1 (an initial condition; after "
                                  "it the markup moves with its load) [fraction]; default "
                                  "min_margin")
    target_utilization: Fraction = Field(default=0.8, description="utilization it prices and "
                                                                   "invests towards [fraction]")

    @model_validator(mode="after")
    def _margins_ordered(self) -> "Cloud":
        if self.max_margin < self.min_margin:
            raise ValueError("max_margin must be >= min_margin")
        if self.initial_margin is not None and not (
                self.min_margin <= self.initial_margin <= self.max_margin):
            raise ValueError("initial_margin must lie between min_margin and max_margin")
        return self


class Lab(_Model):
    name: str
    nation: str
    start: Month | None = Field(default=None, description="month the lab enters (default: start)")
    demand_h100e: Positive = Field(description="potential demand at the run's start: compute "
                                               "it would use at the reference price, as H100s "
                                               "in continuous use [H100e]; a lab that enters "
                                               "later enters with it grown by its own rate and "
                                               "the market's demand path since the run's start")
    demand_growth_per_year: GrowthRate = Field(description="own growth of that demand on top of "
                                                           "the market demand path [fraction/yr]")
    financing_usd_per_year: Positive = Field(
        description="outside money for compute at the run's start (investors, a parent "
                    "group) [USD/yr]; scaled by market.financing_index and grown by its own "
                    "rate from the run's start (also for a lab that enters later); serving "
                    "margins add to it")
    financing_growth_per_year: GrowthRate = Field(description="own growth of that financing "
                                                              "[fraction/yr]")
    inference_share: Fraction = Field(default=0.4, description="share of potential demand that "
                                                               "is serving [fraction]")
    hyperscaler_share: Fraction = Field(default=0.6, description="share of its market demand at "
                                                                 "hyperscalers at the start "
                                                                 "(contracts in force); later "
                                                                 "shares are chosen [fraction]")
    can_build: bool = Field(default=False, description="may buy chips and run its own clusters")
    power_mw: NonNegative = Field(default=0.0, description="own datacenter power at start [MW]")
    power_pipeline_growth_per_year: GrowthRate = Field(
        default=0.5, description="growth rate of its own capacity implied by the projects "
                                 "under way at the start [fraction/yr] (as a cloud's)")
    power_projects_mw: dict[Month, NonNegative] = Field(
        default_factory=dict, description="announced projects {month online = MW}")
    fleet: dict[str, NonNegative] = Field(default_factory=dict, description="own chips at start")
    vendor_preference: dict[str, Positive] = Field(default_factory=dict,
                                                   description="vendor weights when it builds")

    @property
    def has_site(self) -> bool:
        """Whether it has a site of its own, so buys chips: it may build, or starts with chips
        or power (else it only rents hours)."""
        return bool(self.can_build or self.fleet or self.power_mw > 0)


class LongTail(_Model):
    count: Annotated[int, Field(ge=0, le=MAX_LONG_TAIL_LABS)] = Field(
        description=f"number of generated smaller labs; at most {MAX_LONG_TAIL_LABS:,}: memory "
                    "grows by about 16 KB per lab over a 108-month run (1.8 GB at 100,000, "
                    "about 16 GB at 1,000,000), and more labs add detail, not demand (their "
                    "total is demand_h100e_by_nation)")
    demand_h100e_by_nation: dict[str, NonNegative] = Field(
        description="their total demand at the start per nation [H100e]; split among the labs "
                    "with lognormal sizes so the total does not depend on the count")
    size_sigma: Annotated[float, Field(ge=0, le=5)] = Field(
        default=1.2, description="lognormal sigma of lab sizes [-]")
    demand_growth_per_year: GrowthRate = Field(description="growth relative to the market "
                                                           "demand path [fraction/yr]")
    demand_growth_by_nation: dict[str, GrowthRate] = Field(
        default_factory=dict, description="per-nation growth overriding "
                                          "demand_growth_per_year, for counterfactuals (the "
                                          "built-in scenarios set none) [fraction/yr]")
    financing_usd_per_h100e_year: Positive = Field(
        description="outside financing per H100e of potential demand [USD/(H100e·yr)]")
    inference_share: Fraction = 0.6
    hyperscaler_share: Fraction = 0.5


class CloudInvestment(_Model):
    """How clouds form expectations and turn an expected return into chip orders."""

    expectation_memory_months: Annotated[float, Field(ge=1, le=120, allow_inf_nan=False)] = \
        Field(default=6.0, description="mean age of the adaptive expectation of revenue per "
                                       "offered H100e-hour: each month it moves 1/m of the "
                                       "way to what an offered hour earned [months]")
    expected_price_decline_per_year: Annotated[float, Field(ge=0, lt=1,
                                                            allow_inf_nan=False)] = Field(
        default=0.276, description="fall of an H100e-hour's price a cloud expects over a new "
                                   "chip's life, as newer chips arrive [fraction/yr]")
    growth_response_per_year: Annotated[float, Field(ge=0, le=20, allow_inf_nan=False)] = \
        Field(default=1.0, description="growth of the committed fleet ordered per unit of "
                                       "expected return PV / cost - 1 [fraction/yr]")
    trend_damping_per_month: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = \
        Field(default=1.0, description="damping of the demand trend a cloud extrapolates to "
                                       "delivery: month i ahead carries f^i of today's growth "
                                       "(1: undamped) [-]")
    supply_line_weight: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        default=1.0, description="weight a cloud gives the chips it has ordered but not yet "
                                 "installed when it judges how loaded its fleet will be at "
                                 "delivery (1: all of them; 0: ignores its supply line) [-]")
    demand_uncertainty: Annotated[float, Field(gt=0, le=3, allow_inf_nan=False)] = Field(
        default=0.25, description="log spread of a cloud's forecast of the hours asked of it "
                                  "at delivery; a posted-price seller sells an added hour "
                                  "only when demand then exceeds its fleet [-]")


class Leakage(_Model):
    """Channels by which controlled compute reaches restricted destinations anyway."""

    destinations: list[str] = Field(default_factory=lambda: ["D5"],
                                    description="destination groups leakage flows to")
    via: str = Field(default="RoW", description="nation id diverted chips pass through")
    diversion_max_share: Fraction = Field(
        default=0.3, description="share of blocked chip orders diverted at an infinite price "
                                 "gap and no enforcement [fraction]")
    diversion_gap_sensitivity: NonNegative = Field(
        default=1.0, description="k in share = max x (1 - exp(-k x gap)) x (1 - enforcement), "
                                 "gap = destination / via neocloud price index - 1 [-]")
    enforcement: Fraction = Field(default=0.5, description="enforcement effort [0-1]")
    smuggling_premium: NonNegative = Field(
        default=0.5, description="markup paid for a diverted chip over the vendor's price "
                                 "[fraction]")
    transit_capacity_units_per_month: NonNegative = Field(
        default=25_000.0, description="grey-market orders the transit hubs take a month for "
                                      "the destinations (the diverted part of blocked "
                                      "ordinary orders is not counted in it) [units/month]")
    stockpile_months: NonNegative = Field(
        default=6.0, description="months of a buyer's usual chip orders pulled forward between "
                                 "a rule's announcement (or the month buyers expected it) and its "
                                 "effective date [months]")
    usual_orders_memory_months: Annotated[float, Field(ge=1, le=60)] = Field(
        default=5.0, description="memory of the moving average that measures a buyer's usual "
                                 "chip orders (mean age of what it remembers) [months]")


class Serving(_Model):
    """The workload labs serve, for the cost core's throughput model (`market.costs.
    ServingWorkload`, whose docstring gives each default's source): how many tokens an hour of
    each chip serves, so a chip's serving value is not its training H100e."""

    params: Annotated[float, Field(ge=1e8, le=1e13)] = Field(
        default=70e9, description="model parameters [-] (100M to 10T)")
    bytes_per_param: Annotated[float, Field(ge=0.25, le=4)] = Field(
        default=2.0, description="weight precision [bytes]")
    kv_bytes_per_token: Annotated[float, Field(ge=1e3, le=1e8)] = Field(
        default=327_680.0, description="KV cache per token of context [bytes]")
    context_tokens: Annotated[float, Field(ge=128, le=32_768)] = Field(
        default=4096.0, description="context held per sequence [tokens]")
    max_step_seconds: Annotated[float, Field(ge=0.02, le=10)] = Field(
        default=0.05, description="latency bound per decode step [s]")
    precision: Literal["bf16", "fp8"] = "bf16"
    bandwidth_efficiency: Annotated[float, Field(ge=0.3, le=1)] = 0.8
    compute_efficiency: Annotated[float, Field(ge=0.1, le=1)] = 0.5
    memory_usable_share: Annotated[float, Field(ge=0.5, le=1)] = 0.9
    chips_per_server: Annotated[int, Field(ge=1, le=576)] = 8


class Market(_Model):
    """Behavioural parameters of the markets (calibrated, uncertain)."""

    serving: Serving = Field(default_factory=Serving,
                             description="the workload labs serve (tokens per chip-hour)")

    demand_index: Path = Field(description="potential-demand path: market-wide multiplier on "
                                           "every lab's potential demand [-], e.g. the "
                                           "post-ChatGPT surge")
    financing_index: Path = Field(description="market-wide multiplier on every lab's outside "
                                              "financing [-] (investors' money)")
    reference_price_usd_per_h100e_hour: Positive = Field(
        description="GPU-hour price at which potential demand is measured [USD/(H100e·h)]")
    value_sigma: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.3, description="log-sd of labs' reference prices around it [-]")
    serving_elasticity: Annotated[float, Field(gt=0, le=5)] = Field(
        description="price elasticity of token demand (iso-elastic) [-]")
    training_elasticity: Annotated[float, Field(gt=0, le=5)] = Field(
        description="price elasticity of the compute a lab would train with, budget aside [-]")
    elasticity_sigma: Annotated[float, Field(ge=0, le=0.5)] = Field(
        default=0.2, description="log-sd of labs' elasticities around the means [-]; draws "
                                 "are kept within 0.05-5")
    short_run_elasticity_share: Annotated[float, Field(gt=0, le=1)] = Field(
        default=1.0, description="share of the (long-run) elasticities a lab's demand shows "
                                 "within the month, about the price it planned at (partial "
                                 "adjustment); 1 = no lag in re-planning [fraction]")
    demand_adjustment_months: Annotated[float, Field(ge=1, le=60)] = Field(
        default=12.0, description="memory of the price labs plan their compute at (mean age "
                                  "of the adaptive expectation): how long re-planning "
                                  "products and training runs around a new price takes "
                                  "[months]")
    serving_markup: Annotated[float, Field(ge=0, le=20)] = Field(
        description="labs' markup on the compute cost of a token, at the spot price they "
                    "planned at (posted token prices) [fraction]; the margin funds next "
                    "month's compute budget")
    experiment_share: Fraction = Field(description="share of training compute spent on "
                                                   "experiments, not frontier runs [fraction]")
    hyperscaler_wtp_premium: Annotated[float, Field(ge=1, le=10)] = Field(
        default=1.5, description="how much more buyers value an hour from a hyperscaler "
                                 "(integration, credits, data gravity) [x]")
    choice_price_sensitivity: Annotated[float, Field(gt=0, le=50)] = Field(
        description="logit weight on log effective cost when buyers choose tier and "
                    "instrument [-]")
    switching_cost: Annotated[float, Field(ge=0, le=20)] = Field(
        description="utility cost of leaving last month's option, in logit units [-]")
    choice_revision_share: Annotated[float, Field(gt=0, le=1)] = Field(
        description="share of a buyer's demand that reconsiders its tier and instrument each "
                    "month [fraction/month]")
    initial_contract_share: Fraction = Field(
        default=0.5, description="share of each tier's demand under contract at the start [-]")
    list_revision_threshold: Annotated[float, Field(gt=0, le=1)] = Field(
        description="gap between a hyperscaler list price and its target that triggers a "
                    "revision (menu cost) [fraction]")
    committed_use_discount: Annotated[float, Field(ge=0, lt=1)] = Field(
        description="discount on list for one-year committed use at hyperscalers [fraction]")
    contract_term_premium: Annotated[float, Field(ge=-0.9, le=2)] = Field(
        description="neoclouds' lowest one-year contract price (the forward) over the spot "
                    "price expected [fraction]")
    contract_months: Annotated[int, Field(ge=1, le=60)] = Field(
        default=12, description="term of contracts [months]")
    contract_capacity_share: Fraction = Field(
        description="most of a tier's capacity its clouds commit to contracts [fraction]")
    hyperscaler_spot_share: Fraction = Field(
        default=0.0, description="share of a hyperscaler's idle hours (after contracts and list "
                                 "sales) it offers on the spot market as spot or preemptible "
                                 "instances, at the price it would fetch held back "
                                 "(`list_demand_spread`) [fraction]")
    hyperscaler_load: Literal["all_sales", "posted_prices"] = Field(
        default="all_sales", description="the load a hyperscaler's list markup moves with: "
        "`all_sales`, every hour sold over offered, its idle hours sold at spot among them "
        "(its load then reads 1 whenever it sells them, and its markup climbs to max_margin); "
        "`posted_prices`, hours sold at list and under contract plus list demand it could not "
        "serve, over offered (docs/model.md, \"Margin\")")
    list_buyers_plan_list: bool = Field(
        default=False, description="list buyers meet a list revision on their short-run "
        "curves about the list they planned at (an adaptive expectation with "
        "demand_adjustment_months); false: on their long-run curves")
    list_demand_spread: Annotated[float, Field(ge=0, le=3, allow_inf_nan=False)] = Field(
        default=0.0, description="log spread of the posted-price demand a hyperscaler holds its "
                                 "idle hours back for when it prices them at spot "
                                 "(`market.gpu_hours.spot_asks`) [-]; 0: it asks its energy "
                                 "cost for all of them")
    spot_ask_tranches: Annotated[int, Field(ge=1, le=64)] = Field(
        default=8, description="blocks a hyperscaler's idle hours are offered at spot in, "
                               "each at its own protection price: a numerical resolution [-]")
    uncontracted_spot_share: Fraction = Field(
        description="share of the demand that finds no contract (the clouds have committed all "
                    "they will) that buys spot the same month; the rest waits [fraction]")
    expectation_memory_months: Annotated[float, Field(ge=1, le=120)] = Field(
        description="memory of adaptive price expectations (mean age of what is remembered) "
                    "[months]")
    largest_site_share: Annotated[float, Field(gt=0, le=1)] = Field(
        description="share of a fleet in its largest single cluster: bounds a frontier run "
                    "[fraction]")
    run_months: Annotated[float, Field(ge=1, le=36)] = Field(
        description="mean wall-clock limit of a lab's frontier runs [months]")
    run_months_spread: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.4, description="labs' run limits are drawn uniformly within +- this share "
                                 "of the mean [fraction]")
    lab_cost_of_capital: Annotated[float, Field(ge=0, le=1)] = Field(
        description="building labs' cost of capital (WACC) [fraction/yr]")
    build_utilization: Annotated[float, Field(gt=0, le=1)] = Field(
        description="utilization a building lab expects of its own cluster [fraction]")
    build_gap_closure_per_month: Annotated[float, Field(gt=0, le=1)] = Field(
        description="share of the gap to the compute it wants that a building lab orders in "
                    "a month [fraction]")
    remote_kyc_share: Fraction = Field(
        description="share of a foreign region's neocloud capacity open to buyers from "
                    "restricted destinations (know-your-customer screening) [fraction]")
    availability: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        default=0.95, description="sellable share of fleet hours [fraction], above 0: at 0 no "
                                  "hour is offered and GPU-hour prices are undefined")
    margin_response: Positive = Field(default=0.5, description="change of a hyperscaler's list "
                                                               "markup per unit of utilization "
                                                               "gap [-]")
    hyperscaler_pricing: str = Field(
        default="utilization_margin", description="the rule a hyperscaler's list markup moves "
        "by, by name (agents.strategies.PRICING): `utilization_margin`, with its load "
        "(`margin_response`); `market_share_margin`, with its region's hyperscaler share of "
        "the hours buyers ask for (`markup_share_response`; Dosi et al. 2010); "
        "`posted_price`, not at all (docs/model.md, \"Margin\")")
    markup_share_response: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] = Field(
        default=1.0, description="elasticity of a hyperscaler's list markup to its region's "
                                 "hyperscaler share of demand under `market_share_margin`: "
                                 "the markup moves by this x the share's relative change [-]")
    chip_lead_time_months: Annotated[int, Field(ge=0, le=24)] = Field(
        default=3, description="order-to-delivery time for chips [months]")
    power_build_lag_months: Annotated[int, Field(ge=0, le=60)] = Field(
        default=18, description="months from starting a datacenter power project to its "
                                "power coming online [months]")
    datacenter_capex_usd_per_mw: NonNegative = Field(
        default=10e6, description="build cost of datacenter shell, power and cooling per MW "
                                  "of facility power [USD/MW]")
    datacenter_life_years: Annotated[float, Field(ge=1, le=60, allow_inf_nan=False)] = Field(
        default=15.0, description="years over which a lab's rent recovers the build cost of "
                                  "the power built for it, at lab_cost_of_capital [yr]")
    power_planning_memory_months: Annotated[float, Field(ge=1, le=120,
                                                         allow_inf_nan=False)] = Field(
        default=6.0, description="mean age of the adaptive expectation of the chips an owner "
                                 "wants to order a month, which it builds power for [months]")
    retire_after_years: Annotated[float, Field(ge=MIN_RETIRE_AFTER_YEARS,
                                               allow_inf_nan=False)] = Field(
        default=6.0, description=f"age at which chips retire [yr], at least "
                                 f"{MIN_RETIRE_AFTER_YEARS:g} (accelerators are depreciated over "
                                 "4-6 years) and above every starting fleet's fleet_age_years: "
                                 "a starting fleet that retires in the first month leaves no "
                                 "GPU-hour price for clouds to invest by, and the market never "
                                 "opens")
    order_price_elasticity: NonNegative = Field(default=1.0, description="elasticity of chip "
                                                                         "orders to price [-]")
    vendor_switching_cost: Annotated[float, Field(ge=0, le=10)] = Field(
        default=2.0, description="what buying from a vendor a buyer gives no preference adds "
                                 "to a chip's cost, as a multiple of it, scaled by 1 - its "
                                 "weight / its top weight (software ports, requalification) "
                                 "[x]")
    vendor_choice_sensitivity: Annotated[float, Field(gt=0, le=50)] = Field(
        default=3.0, description="logit weight on the log effective cost of each vendor's chip "
                                 "when an order is split among vendors [-]")
    line_dissimilarity: Annotated[float, Field(gt=0, le=1)] = Field(
        default=1.0, description="dissimilarity of the products within one "
                                 "vendor's line [-], in (0, 1]: a vendor's part of an order "
                                 "spreads over its products by a logit with sensitivity "
                                 "vendor_choice_sensitivity / line_dissimilarity (a nested "
                                 "logit's lower level, McFadden 1978; vendors are still "
                                 "compared by their best offers); 1 spreads it as sharply "
                                 "as orders spread over vendors, towards 0 the best value "
                                 "per H100e takes it all")
    remote_friction_usd_per_h100e_hour: NonNegative = Field(
        default=0.5, description="extra cost of renting abroad [USD/(H100e·h)]")
    remote_access_allowed: bool = Field(default=True, description="whether remote access to "
                                                                  "foreign clouds is open")
    mfu: Fraction = Field(default=0.375, description="MFU of training runs (Epoch median)")
    rationing: str = Field(default="pro_rata", description="chip rationing rule under shortage "
                                                           "(pro_rata | first_come)")


class ExportControlEvent(_Model):
    kind: Literal["export_control"]
    date: Month = Field(description="month the rule takes effect in this scenario")
    rule: str = Field(description="rule id from market/data/controls.toml or [rules]")
    action: Literal["impose", "lift"] = "impose"
    issuer: str = Field(default="US", description="nation that issues the rule; it applies to "
                                                   "chips of that nation's vendors")
    note: str | None = None


class HbmShortageEvent(_Model):
    kind: Literal["hbm_shortage"]
    date: Month
    factor: Annotated[float, Field(ge=0, le=1)] = Field(description="output multiplier [-]")
    months: Annotated[int, Field(ge=1, le=240)] = Field(description="duration [months]")
    vendors: list[str] = Field(default_factory=list, description="vendors hit (default all)")
    note: str | None = None


class PowerConstraintEvent(_Model):
    kind: Literal["power_constraint"]
    date: Month
    nation: str
    factor: Annotated[float, Field(ge=0, le=1)] = Field(description="multiplier on the "
                                                        "power capacity of its datacenters [-]")
    months: Annotated[int, Field(ge=1, le=240)] = Field(description="duration [months]")
    note: str | None = None


class EfficiencyShockEvent(_Model):
    kind: Literal["efficiency_shock"]
    date: Month
    factor: Annotated[float, Field(gt=0, le=1)] = Field(
        description="FLOP needed per unit of capability, as a multiple of before [-]; labs' "
                    "compute demand scales with it")
    months: Annotated[int, Field(ge=1, le=600)] = Field(
        description="months until demand has grown back into the saving (rebound, linear) ")
    note: str | None = None


class DomesticPolicyEvent(_Model):
    kind: Literal["domestic_policy"]
    date: Month
    nation: str
    domestic_chip_subsidy: Fraction | None = Field(default=None, description="[fraction]")
    foreign_chip_weight: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None, description="multiplier on home buyers' preference for foreign vendors")
    banned_chips: list[str] = Field(
        default_factory=list, description="catalog chips its buyers (or those in "
                                          "banned_buyers) may no longer buy from this month, "
                                          "from any vendor by any channel: a hard limit; their "
                                          "open orders for them are cancelled")
    banned_buyers: list[str] = Field(
        default_factory=list, description="its clouds and labs the ban binds (ids); empty: "
                                          "every buyer in the nation")
    note: str | None = None


class FoundryShockEvent(_Model):
    kind: Literal["foundry_shock"]
    date: Month
    foundry: str
    factor: Annotated[float, Field(ge=0, le=1)] = Field(description="output multiplier [-]")
    months: Annotated[int, Field(ge=1, le=240)] = Field(description="duration [months]")
    note: str | None = None


class RemoteAccessEvent(_Model):
    kind: Literal["remote_access"]
    date: Month
    allowed: bool
    note: str | None = None


class DemandShockEvent(_Model):
    kind: Literal["demand_shock"]
    date: Month
    factor: Positive = Field(description="multiplier on all labs' demand from this date [-]")
    months: Annotated[int, Field(ge=1, le=600)] | None = Field(
        default=None, description="duration [months]; default: permanent")
    note: str | None = None


Event = Annotated[Union[ExportControlEvent, FoundryShockEvent, RemoteAccessEvent,
                        DemandShockEvent, HbmShortageEvent, PowerConstraintEvent,
                        EfficiencyShockEvent, DomesticPolicyEvent], Field(discriminator="kind")]


class Distribution(_Model):
    """An uncertain input's distribution and bounds (sampled by the Monte Carlo runner), or a
    calibrated parameter's prior.

    uniform(low, high); triangular(low, mode, high); normal(mean, sigma), truncated to
    [low, high] when given; lognormal: ln(value) is normal with median `mean` (a value, not
    its log) and standard deviation `sigma` of the log, truncated to [low, high] when given;
    choice(values), equally likely.
    """

    dist: Literal["uniform", "normal", "lognormal", "triangular", "choice"]
    low: Finite | None = None
    high: Finite | None = None
    mode: Finite | None = None
    mean: Finite | None = None
    sigma: Finite | None = Field(default=None, ge=0)
    values: list[float | str | bool] | None = None
    rationale: str = Field(description="source or reason for the range")

    @model_validator(mode="after")
    def _parameters(self) -> "Distribution":
        need = {"uniform": ("low", "high"), "triangular": ("low", "mode", "high"),
                "normal": ("mean", "sigma"), "lognormal": ("mean", "sigma"),
                "choice": ("values",)}[self.dist]
        missing = [p for p in need if getattr(self, p) is None]
        if missing:
            raise ValueError(f"{self.dist} needs {', '.join(missing)}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.dist == "triangular" and not self.low <= self.mode <= self.high:
            raise ValueError("triangular needs low <= mode <= high")
        if self.dist == "choice" and not self.values:
            raise ValueError("choice needs at least one value")
        if self.dist == "lognormal" and not self.mean > 0:
            raise ValueError(f"lognormal needs a median (mean) > 0, got {self.mean}")
        if self.dist in ("normal", "lognormal") and self.sigma == 0 and (
                self.low is not None or self.high is not None):
            raise ValueError("a truncated distribution needs sigma > 0")
        return self


class Lever(_Model):
    """A policy choice to cross with the uncertainties: each value is run with every sample."""

    values: list[float | str | bool | dict | list] = Field(min_length=1, description="the "
                                                            "options, in the field's own form")
    rationale: str = Field(description="what the options stand for")


class Scenario(_Model):
    name: str = Field(min_length=1, max_length=200,
                      description="display name: one line, no control characters")
    description: str
    extends: str | None = Field(default=None, description="scenario this one overrides")
    start: Month = "2022-01"
    end: Month = "2030-12"
    nations: dict[str, Nation]
    foundries: dict[str, Foundry]
    vendors: dict[str, Vendor]
    clouds: dict[str, Cloud]
    labs: dict[str, Lab]
    long_tail: LongTail
    market: Market
    leakage: Leakage = Field(default_factory=Leakage)
    cloud_investment: CloudInvestment = Field(default_factory=CloudInvestment)
    rules: dict[str, Rule] = Field(default_factory=dict,
                                   description="export-control rules defined by this scenario, "
                                               "in the form of market/data/controls.toml")
    events: list[Event] = Field(default_factory=list)
    uncertain: dict[str, Distribution] = Field(default_factory=dict)
    levers: dict[str, Lever] = Field(default_factory=dict, description="policy choices crossed "
                                     "with the uncertainty samples in Monte Carlo batches")
    calibrate: dict[str, Distribution] = Field(
        default_factory=dict, description="behavioural parameters `gpumarket calibrate` "
        "estimates, each with its prior (scenarios.behavioural lists the fields allowed)")

    @field_validator("name")
    @classmethod
    def _one_line(cls, name: str) -> str:
        if not name.isprintable():
            raise ValueError("a name is one line of printable characters (no newline, tab or "
                             "other control character)")
        return name

    @model_validator(mode="after")
    def _span(self) -> "Scenario":
        if parse_month(self.end) < parse_month(self.start):
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self

    @property
    def months(self) -> int:
        return parse_month(self.end) - parse_month(self.start) + 1


Nation.model_rebuild()


def _unwrap(tp: Any, part: Any = None) -> tuple[Any, bool]:
    """`tp` without Annotated and Optional; a union of events narrowed to the one whose `kind`
    tag is `part` (True then: `part` was that tag, not a field)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            tagged = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)
                      and "kind" in m.model_fields
                      and typing.get_args(m.model_fields["kind"].annotation) == (part,)]
            if tagged:                              # an event's kind tag
                return tagged[0], True
            tp = members[0]
        else:
            return tp, False


def _walk(loc: tuple) -> tuple[type[BaseModel] | None, str | None, FieldInfo | None, Any]:
    """The model, field name and field of a location, and the type found there; (None, None,
    None, None) where the location names no field."""
    tp: Any = Scenario
    owner, name, info = None, None, None
    for part in loc:
        tp, was_tag = _unwrap(tp, part)
        if was_tag:
            continue
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(str(part))
            if info is None:
                return None, None, None, None
            owner, name, tp = tp, str(part), info.annotation
        elif origin in (dict, list):
            tp = typing.get_args(tp)[-1]
            owner, name, info = None, None, None
        else:
            return None, None, None, None
    return owner, name, info, tp


def field_at(loc: tuple) -> tuple[type[BaseModel] | None, str | None, FieldInfo | None]:
    """The schema model, field name and field of a location in a scenario (('vendors',
    'nvidia', 'floor_margin'), list items by index, an event by its position or `kind` tag
    as pydantic reports it); (None, None, None) where the location names no field."""
    return _walk(loc)[:3]


def fields_of(loc: tuple) -> list[str] | None:
    """The field names a table at `loc` may have (the top level at ()), in schema order; None
    where `loc` is not a table of fixed fields (a dict keyed by ids, a value)."""
    tp = Scenario if not loc else _walk(loc)[3]
    tp, _ = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return None
