"""Nations: where chips are installed and labs live; the controller applies export rules."""

from __future__ import annotations

import mesa


class Nation(mesa.Agent):
    """A nation (also a GPU-hour region): prices of power, carbon, build-out, and its policies."""

    def __init__(self, model: mesa.Model, nation_id: str, spec):
        super().__init__(model)
        self.nation_id = nation_id
        self.name = spec.name
        self.electricity_usd_per_kwh = spec.electricity_usd_per_kwh
        self.grid_kg_co2_per_kwh = spec.grid_kg_co2_per_kwh
        self.power_buildout_per_year = spec.power_buildout_per_year
        self.jurisdiction = spec.jurisdiction
        self.controls_group = spec.controls_group
        self.remote_regions = list(spec.remote_regions)
        self.rule_in_force: str | None = None   # the export rule this nation applies, if any

    def apply_event(self, event) -> None:
        """Apply a policy event this nation issues (export rules for now)."""
        if event.kind == "export_control":
            self.rule_in_force = event.rule
