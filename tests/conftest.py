"""Suite-wide checks: the test session leaves no process running, and property tests draw
the same examples on every run.

At the end of the session every live descendant of the pytest process (from /proc; zombies,
which are already dead, do not count) is an error that names it: a test, fixture or command
that started a process must stop it. Processes take a moment to exit after being stopped, so
the check waits up to LEFTOVER_WAIT_S first.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import settings

from market.processes import descendants

# Property tests draw the same examples on every run (derived from each test's code), so the
# suite passes or fails alike on the same tree, in CI as at a desk; set
# GPUMARKET_HYPOTHESIS=explore to draw new examples and look for failures.
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("GPUMARKET_HYPOTHESIS", "fixed"))

#: How long processes that are being stopped get to disappear before they count [s].
LEFTOVER_WAIT_S = 15.0
#: Processes that live exactly as long as the pytest process and end with it: multiprocessing's
#: resource tracker (started once by the first spawn-started child, e.g. a Dask worker; it
#: exits when pytest closes its pipe). Matched against the command line.
ENDS_WITH_PYTEST = ("from multiprocessing.resource_tracker import main",)


def leftover_processes() -> list:
    """Live descendants of this process that are not expected to end with it."""
    return [p for p in descendants(os.getpid())
            if not any(marker in p.command for marker in ENDS_WITH_PYTEST)]


def wait_for_no_leftovers(timeout_s: float | None = None) -> list:
    """The leftover processes once none remain or `timeout_s` (LEFTOVER_WAIT_S) has passed."""
    deadline = time.monotonic() + (LEFTOVER_WAIT_S if timeout_s is None else timeout_s)
    while (left := leftover_processes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="session", autouse=True)
def no_processes_left_behind():
    yield
    left = wait_for_no_leftovers()
    if left:
        pytest.fail(f"the test session left {len(left)} process(es) running: "
                    + "; ".join(str(p) for p in left), pytrace=False)
