"""The command group, its error handling, option types and the helpers every command shares.

Every user error (a `GpumarketError` or a click usage error) becomes one line on stderr and
exit code 2. Heavy imports stay inside the commands so `--help` is instant.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any, Sequence

import click

from market.errors import GpumarketError

_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_NUMBER_RE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*([kmbgt]?)\s*$", re.I)


class _Number(click.ParamType):
    """A finite number, optionally with a k/M/B/T suffix (175B = 175e9)."""

    name = "number"

    def __init__(self, integer: bool = False):
        self.integer = integer

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, (int, float)):
            number = float(value)
        else:
            match = _NUMBER_RE.match(str(value))
            if not match:
                self.fail(f"{value!r} is not a finite number (examples: 2.5, 3e23, 175B)",
                          param, ctx)
            number = float(match.group(1)) * _SUFFIXES.get(match.group(2).lower(), 1.0)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.integer:
            if number != int(number):
                self.fail(f"{value!r} is not a whole number", param, ctx)
            return int(number)
        return number


NUMBER = _Number()
INTEGER = _Number(integer=True)


class _Cli(click.Group):
    """Click group that reports usage and user errors as one line with exit code 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        except click.Abort:
            click.echo("gpumarket: interrupted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            click.echo(f"gpumarket: error: {exc.format_message()}", err=True)
            sys.exit(2)
        except GpumarketError as exc:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                click.echo(f"gpumarket: error: {line}", err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)


def _version() -> str:
    from market import __version__
    return __version__


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="gpumarket")
def cli() -> None:
    """gpumarket: an agent-based model of the AI-compute market, with a deterministic cost core."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="gpumarket")


# ------------------------------------------------------------------------- formatting ---

def _parse_dates(dates: str | None) -> list[str] | None:
    """`--dates` as a list of YYYY-MM months (None when not given); a bad month is a usage
    error naming the option."""
    from market.timeline import parse_month

    if not dates:
        return None
    wanted = [d.strip() for d in dates.split(",")]
    for d in wanted:
        try:
            parse_month(d)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--dates'") from None
    return wanted


def _check_within(months: list[str], first: int, last: int, option: str, what: str) -> None:
    """Refuse any month outside `first`..`last` (months from `parse_month`) in one line that
    gives the bounds: a date the run does not cover is an error, never silently left out."""
    from market.timeline import format_month, parse_month

    outside = [m for m in months if not first <= parse_month(m) <= last]
    if outside:
        kind = "a month" if len(months) == 1 else "months"
        raise click.BadParameter(f"{', '.join(outside)}; expected {kind} within {what}, "
                                 f"{format_month(first)} to {format_month(last)}",
                                 param_hint=f"'{option}'")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _emit_json(payload: Any) -> None:
    click.echo(json.dumps(_json_safe(payload), indent=2, allow_nan=False))


def _usd(x: float | None) -> str:
    if x is None:
        return "n/a"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(x) >= scale:
            return f"${x / scale:,.3g}{suffix}" if abs(x) < 100 * scale else f"${x / scale:,.0f}{suffix}"
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) >= 1e7 or abs(x) < 1e-2):
        return f"{x:.{digits}g}"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.{max(digits - 1, 1)}f}"


def _rows(title: str, rows: list[tuple[str, str]], notes: list[str] | None = None) -> None:
    width = max(len(label) for label, _ in rows)
    click.echo(title)
    for label, value in rows:
        click.echo(f"  {label:<{width}}  {value}")
    for note in notes or []:
        click.echo(f"Note: {note}")




# ------------------------------------------------------------------------------ extras ---

#: The optional parts of gpumarket and the modules each brings (pyproject's extras).
EXTRAS = {"batch": ("dask", "distributed", "SALib"),
          "calibrate": ("dask", "distributed", "sklearn", "optuna"),
          "viz": ("solara", "networkx", "ipyvuetify")}


def _missing(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):      # a module blocked in sys.modules
        return True


def require_extra(extra: str, command: str) -> None:
    """One line naming the extra to install when a command's optional modules are missing."""
    missing = [m for m in EXTRAS[extra] if _missing(m)]
    if missing:
        # gpumarket is installed from its source checkout (it is not on PyPI)
        raise GpumarketError(f"`gpumarket {command}` needs the {extra} extra ({', '.join(missing)} "
                             f"not installed): in the gpumarket source checkout, "
                             f"pip install '.[{extra}]'")
