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
        if (this.gone || wanted !== this.spec_json) { return; }  // gone, or a newer spec came
        if (this.embedding) { return; }   // the chart being drawn draws the latest spec next
        const spec = JSON.parse(wanted);
        const datasets = spec.datasets || {};
        const shape = JSON.stringify({ ...spec, datasets: Object.keys(datasets) });
        if (this.view && shape === this.shape) {
          // the same chart, a month later: swap the rows into the chart vega has compiled
          try {
            for (const name of Object.keys(datasets)) { this.view.data(name, datasets[name]); }
            this.view.runAsync().catch(() => this.embed(vegaEmbed, spec, shape, wanted));
            return;
          } catch (err) { console.log("gpumarket chart: drawing it again", err); }
        }
        this.embed(vegaEmbed, spec, shape, wanted);
      });
    },
    embed(vegaEmbed, spec, shape, wanted) {
      this.embedding = true;
      vegaEmbed(this.$refs.plot, spec).then((result) => {
        this.embedding = false;
        if (this.view) { this.view.finalize(); }
        if (this.gone) { result.view.finalize(); return; }
        this.view = result.view;
        this.shape = shape;
        if (!this.observer) {
          this.observer = new ResizeObserver(() => { if (this.view) { this.view.resize(); } });
          this.observer.observe(this.$refs.plot);
        }
        // a spec that came while this one was being drawn: draw it now
        if (wanted !== this.spec_json) { this.draw(); }
      }).catch((err) => { this.embedding = false; console.log("gpumarket chart:", err); });
    },
  },
  destroyed() {
    this.gone = true;
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
