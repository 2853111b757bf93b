"""The `gpumarket` command line: parse, call the library, print.

One module per command group (`cost`, `catalog`, `runs`, `backtest`,
`batch`, `calibrate`, `viz`), each thin; `base`
holds the group, its error handling and shared option types. Every user error (a
`GpumarketError` or a click usage error) becomes one line on stderr and exit code 2. Heavy
imports stay inside the commands so `--help` is instant.
"""

from market.cli.base import cli, main
from market.cli import backtest, batch, calibrate, catalog, cost, runs, viz  # noqa: F401  (register the commands)

__all__ = ["cli", "main"]
