"""Nations: where chips are installed and labs live; controllers apply export rules and may
adapt them; rivals subsidise domestic chips and discourage foreign ones."""

from __future__ import annotations

import mesa

from market.controls import RuleBook, hbm_controlled, order_regime, remote_access_open
from market.timeline import parse_month


class Nation(mesa.Agent):
    """A nation (also a GPU-hour region): prices of power, carbon, build-out, and its policies.

    `regime` is the ordered tuple of export rules this nation has in force (they bind its own
    vendors' chips); `adaptive` policies impose or lift rules when the world crosses a
    threshold, read from the model's state each month.
    """

    def __init__(self, model: mesa.Model, nation_id: str, spec, rules: RuleBook):
        super().__init__(model)
        self.nation_id = nation_id
        self.name = spec.name
        self.electricity_usd_per_kwh = spec.electricity_usd_per_kwh
        self.grid_kg_co2_per_kwh = spec.grid_kg_co2_per_kwh
        self.power_buildout_per_year = spec.power_buildout_per_year
        self.jurisdiction = spec.jurisdiction
        self.controls_group = spec.controls_group
        self.remote_regions = list(spec.remote_regions)
        self.domestic_chip_subsidy = spec.domestic_chip_subsidy
        self.foreign_chip_weight = spec.foreign_chip_weight
        self.adaptive = list(spec.adaptive)
        self.rules = rules
        self.regime: tuple[str, ...] = ()
        #: purchase bans in force: (chips, buyers it binds or None for all its buyers)
        self.bans: list[tuple[frozenset[str], frozenset[str] | None]] = []
        self._last_fired: dict[int, int] = {}    # policy index -> month it fired

    # -- export rules -------------------------------------------------------------------------
    def impose(self, rule_id: str) -> None:
        self.regime = order_regime(self.rules, (*self.regime, rule_id))

    def lift(self, rule_id: str) -> None:
        self.regime = tuple(r for r in self.regime if r != rule_id)

    def apply_event(self, event) -> None:
        """Apply a policy event this nation issues."""
        if event.kind == "export_control":
            (self.impose if event.action == "impose" else self.lift)(event.rule)
        elif event.kind == "domestic_policy":
            if event.domestic_chip_subsidy is not None:
                self.domestic_chip_subsidy = event.domestic_chip_subsidy
            if event.foreign_chip_weight is not None:
                self.foreign_chip_weight = event.foreign_chip_weight
            if event.banned_chips:
                self.bans.append((frozenset(event.banned_chips),
                                  frozenset(event.banned_buyers) or None))

    def banned_for(self, buyer: str) -> frozenset[str]:
        """The chips its purchase bans keep `buyer` (one of its clouds or labs) from buying."""
        out: set[str] = set()
        for chips, buyers in self.bans:
            if buyers is None or buyer in buyers:
                out |= chips
        return frozenset(out)

    def adapt(self, month: int, readings: dict[str, float | dict[str, float]]) -> list[str]:
        """Fire the adaptive policies whose trigger is past its threshold; returns what was
        done, in words, for the policy log. `readings` holds last month's state:
        installed_share and frontier_share by nation [-], and lost_revenue_usd by nation."""
        done = []
        for i, policy in enumerate(self.adaptive):
            if policy.not_before is not None and month < parse_month(policy.not_before):
                continue
            last = self._last_fired.get(i)
            if last is not None and (not policy.repeat or month - last < policy.cooldown_months):
                continue
            if policy.trigger == "vendor_lost_revenue_above":
                value = readings["lost_revenue_usd"].get(self.nation_id, 0.0)
            elif policy.trigger == "rival_installed_share_above":
                value = readings["installed_share"].get(policy.rival, 0.0)
            else:
                value = readings["frontier_share"].get(policy.rival, 0.0)
            if not value > policy.threshold:
                continue
            if policy.impose is not None and policy.impose not in self.regime:
                self.impose(policy.impose)
                done.append(f"impose {policy.impose} ({policy.trigger} {value:,.3g} > "
                            f"{policy.threshold:,.3g})")
            elif policy.lift is not None and policy.lift in self.regime:
                self.lift(policy.lift)
                done.append(f"lift {policy.lift} ({policy.trigger} {value:,.3g} > "
                            f"{policy.threshold:,.3g})")
            else:
                continue
            self._last_fired[i] = month
        return done


def access_switches(nations: dict, remote_access_allowed: bool,
                    rules: RuleBook) -> dict[str, tuple[bool, bool]]:
    """Per nation: (its labs may rent foreign clouds remotely, HBM exports to it are
    controlled), from every other controller's regime and the world's remote-access switch."""
    controllers = [n for n in nations.values() if n.regime]
    out = {}
    for nid, nation in nations.items():
        group = nation.controls_group
        remote_open = remote_access_allowed and all(
            remote_access_open(group, c.regime, rules) for c in controllers
            if c is not nation)
        cut = any(hbm_controlled(group, c.regime, rules) for c in controllers
                  if c is not nation)
        out[nid] = (remote_open, cut)
    return out


def announced_rules(events, rules: RuleBook) -> list[tuple[int, int, str, str]]:
    """Rules known before they take effect, as (first month known, effective month, issuer,
    rule id): buyers stockpile in between. A rule is known from its announcement, or from
    the month buyers began to act on reports of it (`expected`) when that is earlier."""
    out = []
    for event in events:
        if event.kind == "export_control" and event.action == "impose":
            rule = rules[event.rule]
            lead = parse_month(rule.effective) - parse_month(rule.expected or rule.announced)
            if lead > 0:
                eff = parse_month(event.date)
                out.append((eff - lead, eff, event.issuer, event.rule))
    return out
