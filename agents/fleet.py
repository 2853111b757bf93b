"""What an owner of accelerators *has*: installed vintages, chips in transit, chips awaiting power.

A `Fleet` is plain state with vectorized bookkeeping; clouds and building labs each own one.
Units are chips; power in MW; values in USD per chip (including the server share).
"""

from __future__ import annotations

from bisect import bisect_right

import numpy as np

from market.costs import HARDWARE_VALUE_DECLINE_PER_YEAR


class Fleet:
    """Installed vintages (chip, units, install month, price paid) plus the delivery pipeline."""

    def __init__(self, n_chips: int):
        self.n_chips = n_chips
        self.chip = np.zeros(0, dtype=np.int64)
        self.units = np.zeros(0)
        self.installed_month = np.zeros(0, dtype=np.int64)
        self.price_usd = np.zeros(0)          # price paid per chip incl. server [USD]
        self.in_transit: list[tuple[int, int, float, float]] = []   # (arrival, chip, units, price)
        self.awaiting = np.zeros(n_chips)     # delivered, waiting for power [units]
        self.awaiting_price = np.zeros(n_chips)
        self._units_cache: np.ndarray | None = None
        self._value_cache: np.ndarray | None = None
        self.version = 0                      # bumped whenever the installed fleet changes
        self.reference_month = 0              # set by the owning Site [month index]
        self._new: list[tuple[int, float, int, float]] = []   # vintages not yet in the arrays
        self._oldest: int | None = None       # install month of the oldest vintage

    # -- state queries ------------------------------------------------------------------
    def _flush(self) -> None:
        """Move newly installed vintages into the arrays (appending one by one is slow)."""
        if self._new:
            chip, units, month, price = zip(*self._new)
            self._new = []
            self.chip = np.concatenate((self.chip, np.array(chip, dtype=np.int64)))
            self.units = np.concatenate((self.units, units))
            self.installed_month = np.concatenate((self.installed_month,
                                                   np.array(month, dtype=np.int64)))
            self.price_usd = np.concatenate((self.price_usd, price))

    def units_by_chip(self) -> np.ndarray:
        """Installed units per chip index [chips] (cached until the fleet changes)."""
        if self._units_cache is None:
            self._flush()
            self._value_cache = None
            self.version += 1
            self._units_cache = np.bincount(self.chip, weights=self.units,
                                            minlength=self.n_chips)
        return self._units_cache

    def pipeline_by_chip(self) -> np.ndarray:
        """Chips in transit or waiting for power, per chip index [chips]."""
        out = self.awaiting.copy()
        for _, chip, units, _ in self.in_transit:
            out[chip] += units
        return out

    def discounted_value_by_chip(self) -> np.ndarray:
        """Sum over vintages of units x price x e^(r x (installed - reference) / 12), by chip
        [USD]: the fleet's value at month m is this x e^(-r x (m - reference) / 12).

        Value declines exponentially at r = 0.322/yr (Epoch's hardware value decline), so the
        capital cost of an old vintage falls as newer chips make it cheaper to replace;
        factoring the decay out keeps this sum fixed until the fleet changes."""
        self.units_by_chip()
        if self._value_cache is None:
            grown = np.exp(HARDWARE_VALUE_DECLINE_PER_YEAR
                           * (self.installed_month - self.reference_month) / 12.0)
            self._value_cache = np.bincount(self.chip, weights=self.units * self.price_usd
                                            * grown, minlength=self.n_chips)
        return self._value_cache

    # -- changes ------------------------------------------------------------------------
    def add_installed(self, chip: int, units: float, month: int, price_usd: float) -> None:
        if units <= 0:
            return
        self._units_cache = None
        self._new.append((chip, float(units), month, float(price_usd)))
        self._oldest = month if self._oldest is None else min(self._oldest, month)

    def ship(self, arrival_month: int, chip: int, units: float, price_usd: float) -> None:
        """Record chips shipped to this owner, arriving after the lead time."""
        if units > 0:
            self.in_transit.append((arrival_month, chip, units, price_usd))

    def retire(self, month: int, max_age_months: float) -> np.ndarray | None:
        """Remove vintages older than the retirement age; returns retired units per chip
        (None when nothing is old enough)."""
        if self._oldest is None or month - self._oldest < max_age_months:
            return None
        self._flush()
        old = (month - self.installed_month) >= max_age_months
        retired = np.bincount(self.chip[old], weights=self.units[old], minlength=self.n_chips)
        self._oldest = int(self.installed_month[~old].min()) if (~old).any() else None
        if old.any():
            self._units_cache = None
            keep = ~old
            self.chip, self.units = self.chip[keep], self.units[keep]
            self.installed_month, self.price_usd = self.installed_month[keep], self.price_usd[keep]
        return retired

    def receive_and_install(self, month: int, headroom_mw: float, mw_per_chip: np.ndarray,
                            h100e_per_chip: np.ndarray, order: np.ndarray | None = None) -> float:
        """Take delivery of arrived chips and install as many as power allows, the chip with
        the most compute per MW first (`order`, if given, is that ranking). Returns the MW
        newly installed."""
        arrived = [t for t in self.in_transit if t[0] <= month]
        if arrived:
            self.in_transit = [t for t in self.in_transit if t[0] > month]
            for _, chip, units, price in arrived:
                total = self.awaiting[chip] + units
                self.awaiting_price[chip] = (self.awaiting_price[chip] * self.awaiting[chip]
                                             + price * units) / total
                self.awaiting[chip] = total
        used = 0.0
        if headroom_mw <= 0 or not self.awaiting.any():
            return used
        if order is None:
            order = np.argsort(-h100e_per_chip / mw_per_chip, kind="stable")
        for chip in order[self.awaiting[order] > 0]:
            if headroom_mw - used <= 0:
                break
            fit = min(self.awaiting[chip], (headroom_mw - used) / mw_per_chip[chip])
            self.add_installed(int(chip), fit, month, self.awaiting_price[chip])
            self.awaiting[chip] -= fit
            used += fit * mw_per_chip[chip]
        return used


class Site:
    """A place where one owner installs chips: a cloud's datacenters or a lab's own cluster.

    Its power capacity [MW] is what it had at the start, plus the projects that were under way
    then (coming online over the first `build_lag_months` at the growth rate they imply), plus
    the announced projects it is handed (by the month they come online), plus what its owner
    starts building (`start_build`, online after the build lag): capacity is an outcome of
    the owner's investment (`agents.strategies.power_to_start_mw`) within its nation's grid
    (`market.power_builds`). `power_factor` scales it in a regional power-constraint shock.
    """

    def __init__(self, owner_id: str, nation: int, power_mw: float, pue: float, n_chips: int,
                 start_month: int, pipeline_growth_per_year: float = 0.0,
                 build_lag_months: int = 0, projects_mw: dict[int, float] | None = None):
        self.owner_id = owner_id
        self.nation = nation
        self.power_mw0 = power_mw
        self.pue = pue
        self.start_month = start_month
        self.build_lag_months = int(build_lag_months)
        self.fleet = Fleet(n_chips)
        self.fleet.reference_month = start_month
        self.power_factor = 1.0  # multiplier from regional power-constraint shocks
        #: (month online, MW): projects under way at the start, announced ones, its own
        self.builds: list[tuple[int, float]] = []
        # the same as months online in order and the MW online by each (a running sum,
        # so reading the capacity does not re-add every project)
        self._months: list[int] = []
        self._online: list[float] = []
        g = 1.0 + pipeline_growth_per_year
        for m in range(1, self.build_lag_months + 1):
            self._add(start_month + m, power_mw * (g ** (m / 12.0) - g ** ((m - 1) / 12.0)))
        #: announced projects (month online, MW): under way from a build lag before
        self.announced = [(int(m), float(mw)) for m, mw in sorted((projects_mw or {}).items())]
        for month, mw in self.announced:
            self._add(month, mw)
        #: adaptive expectation of the H100e its owner wants to order a month [H100e]
        self.expected_order_h100e: float | None = None
        #: leases of the power built for a lab owner: (first month, last month, USD/month)
        self.leases: list[tuple[int, int, float]] = []

    def _add(self, month: int, mw: float) -> None:
        self.builds.append((month, mw))
        if self._months and month < self._months[-1]:         # out of order: re-sort
            pairs = sorted(self.builds, key=lambda b: b[0])
            self._months = [m for m, _ in pairs]
            self._online = list(np.cumsum([w for _, w in pairs]))
        else:
            self._months.append(month)
            self._online.append((self._online[-1] if self._online else 0.0) + mw)

    def _online_by(self, month: int) -> float:
        k = bisect_right(self._months, month)
        return self.power_mw0 + (self._online[k - 1] if k else 0.0)

    def capacity_mw(self, month: int) -> float:
        """Power online in `month` [MW] (projects under way online by then count)."""
        return self._online_by(month) * self.power_factor

    def committed_mw(self, month: int) -> float:
        """Power online and under construction in `month`, shocks aside [MW]: every project
        is under way for the build lag before it comes online (an announced one too, so it
        does not hold its owner's own builds back before it has begun)."""
        return self._online_by(month + self.build_lag_months)

    def announced_mw(self, month: int) -> float:
        """Announced projects online by `month` [MW]."""
        return sum(mw for first, mw in self.announced if first <= month)

    def start_build(self, month: int, mw: float) -> None:
        """Start `mw` of power this month; it comes online after the build lag."""
        if mw > 0:
            self._add(month + self.build_lag_months, mw)

    def lease(self, month: int, usd_per_month: float, months: int) -> None:
        """Rent a project started `month`: `usd_per_month` from when it comes online, for
        `months` months."""
        if usd_per_month > 0:
            first = month + self.build_lag_months
            self.leases.append((first, first + months - 1, usd_per_month))

    def rent_usd(self, month: int) -> float:
        """What its leases cost in `month` [USD]."""
        return sum(usd for first, last, usd in self.leases if first <= month <= last)

    def rent_due_usd(self, month: int) -> float:
        """The most its leases signed by `month` will cost in a month once online [USD]."""
        return sum(usd for _, last, usd in self.leases if month <= last)

    def facility_mw_per_h100e(self, mw_per_chip: float, h100e_per_chip: float) -> float:
        """Facility power an H100e of a chip draws here [MW/H100e] (chip x server x PUE)."""
        return mw_per_chip * self.pue / h100e_per_chip

    def installed_mw(self, mw_per_chip: np.ndarray) -> float:
        """Facility power of the installed chips at full load [MW] (chip x server x PUE)."""
        return float(self.fleet.units_by_chip() @ mw_per_chip) * self.pue
