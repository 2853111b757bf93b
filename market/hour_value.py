"""What an hour of each chip is worth to a region's buyers, in H100-hours.

The GPU-hour market pools every chip a region's clouds hold, so it needs one unit in which an
hour of an A100, an H20 or a B200 is counted. A buyer values a chip's hour by what it does for
the use the hour goes to: serving tokens (the cost core's roofline throughput, relative to an
H100's: the chip's *serving H100e*) or training (dense throughput: its *training H100e*, the
catalog's `h100e`). A pooled market prices the hour at the value to its mix of buyers:

    value[r, k] = s_r x serving_h100e[k] + (1 - s_r) x training_h100e[k]      [H100e]

with s_r the share of hours region r's labs spent serving (an outcome of last month's market;
at the start, the share of serving in their potential demand). This is a first-order hedonic
price: a chip's price is the value of its characteristics to the buyers of the market
(Rosen 1974, *J. Polit. Econ.* 82(1)), linear in the use mix. An H100 is worth 1 in every
market; an A100 (0.32 training, 0.61 serving) about 0.46 where half the hours serve, which is
what the 2022-23 rental prices of A100s and H100s show side by side (an A100 hour at ~45% of an
H100's in the same tier).

Hours in the market (`market.gpu_hours`) are counted in these units ("market H100e-hours");
training work (FLOP, frontier runs) and installed compute (`installed_h100e`, `shipped_h100e`)
stay in training H100e, Epoch's unit.
"""

from __future__ import annotations

import numpy as np


def hour_value_h100e(training_h100e: np.ndarray, serving_h100e: np.ndarray,
                     serving_share: np.ndarray) -> np.ndarray:
    """(regions, chips) value of an hour of each chip to each region's buyers [H100e]."""
    s = np.clip(np.asarray(serving_share, float), 0.0, 1.0)[:, None]
    return s * np.asarray(serving_h100e, float)[None, :] \
        + (1.0 - s) * np.asarray(training_h100e, float)[None, :]


def serving_share_by_region(serving_hours: np.ndarray, total_hours: np.ndarray,
                            region: np.ndarray, n_regions: int,
                            previous: np.ndarray) -> np.ndarray:
    """Per region, the share of its labs' hours that served [-]; `previous` where they got
    none."""
    serve = np.bincount(region, weights=serving_hours, minlength=n_regions)
    total = np.bincount(region, weights=total_hours, minlength=n_regions)
    return np.divide(serve, total, out=np.asarray(previous, float).copy(), where=total > 0)
