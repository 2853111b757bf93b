"""A Vega-Lite chart widget for the web app, fed a JSON string.

Solara's own `FigureAltair` validates the chart against the Vega-Lite schema on every render
and hands the spec to the page as a nested dict, which the renderer walks prop by prop; with a
few hundred rows of data that took about 0.1 s of the server's time per chart and step
(measured with cProfile on a baseline run). Here the spec (`charts.Spec`: a chart built once,
unvalidated, and this month's rows) goes as one string; the browser draws it with vega-embed
from Solara's asset proxy, as Solara's widget does, and when only the rows changed (the same
chart a month later) it swaps them into the chart it has, without compiling it again.
"""

from __future__ import annotations

import json

import ipyvuetify as v
import solara
import traitlets

_TEMPLATE = """
<template>
  <div class="gpumarket-vega" style="width: 100%"><div ref="plot" style="width: 100%"></div></div>
</template>
<script>
module.exports = {
  mounted() { this.draw(); },
  watch: { spec_json() { this.draw(); } },
  methods: {
    cdn() {
      if (window.solara && window.solara.cdn) { return window.solara.cdn; }
      let base = document.body.dataset.baseUrl || document.baseURI;
      return (base.endsWith("/") ? base : base + "/") + "_solara/cdn";
    },
    draw() {
      const wanted = this.spec_json;
      const cdn = this.cdn();
      window.requirejs.config({ map: { "*": {
        "vega": `${cdn}/vega@5/build/vega.min.js`,
        "vega-lite": `${cdn}/vega-lite@5/build/vega-lite.min.js`,
        "vega-embed": `${cdn}/vega-embed@6/build/vega-embed.min.js` } } });
      window.requirejs(["vega", "vega-lite", "vega-embed"], (vega, vl, vegaEmbed) => {
        if (wanted !== this.spec_json) { return; }   // a newer spec arrived meanwhile
        const spec = JSON.parse(wanted);
        const datasets = spec.datasets || {};
        const shape = JSON.stringify({ ...spec, datasets: Object.keys(datasets) });
        if (this.view && shape === this.shape) {     // same chart, new month: new data only
          try {
            for (const name of Object.keys(datasets)) { this.view.data(name, datasets[name]); }
            this.view.runAsync();
            return;
          } catch (err) { console.log("gpumarket chart: redrawing in full", err); }
        }
        this.shape = shape;
        vegaEmbed(this.$refs.plot, spec).then((result) => {
          if (this.view) { this.view.finalize(); }
          this.view = result.view;
          if (!this.observer) {
            this.observer = new ResizeObserver(() => { if (this.view) { this.view.resize(); } });
            this.observer.observe(this.$refs.plot);
          }
        });
      });
    },
  },
  destroyed() {
    if (this.observer) { this.observer.disconnect(); }
    if (this.view) { this.view.finalize(); }
  },
};
</script>
"""


class VegaChart(v.VuetifyTemplate):
    template = traitlets.Unicode(_TEMPLATE).tag(sync=True)
    spec_json = traitlets.Unicode("{}").tag(sync=True)


def spec_json(chart) -> str:
    """The chart's Vega-Lite spec (`charts.Spec`) as JSON, without schema validation."""
    return json.dumps(chart.to_dict(), separators=(",", ":"))


@solara.component
def Chart(chart):
    """A chart (`charts.Spec`), drawn in the browser by vega-embed."""
    return VegaChart.element(spec_json=spec_json(chart))
