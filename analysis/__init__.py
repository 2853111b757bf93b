"""Consumers of runs: Monte Carlo, sensitivity analysis, plots, reports and the web app."""
