"""`gpumarket calibrate`: behavioural parameters estimated against the observed series.

The rooms, in the order a calibration uses them:
  space             the `[calibrate]` priors as a box: unit cube <-> values, prior density
  observe           one model run's values at the in-sample observations (a batch task), and
                    the backtest's per-series errors of a parameter set over its seeds
  emulator          Gaussian-process emulators of each series' error (scikit-learn)
  history_matching  implausibility, waves that rule out parameter regions, the designs
  posterior         a sample of what is left, weighted by how well it fits
  run               the calibration directory: waves as resumable batches, the outputs
"""
