"""docs/validation.md is what the history scenario's backtest says now (regenerate it with
`python scripts/validation_doc.py` after a change to the model or the observed data)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_validation_doc_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "validation_doc.py"),
                             "--check"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, ("docs/validation.md is stale; run python "
                                    "scripts/validation_doc.py\n" + result.stdout[-3000:])
    doc = (ROOT / "docs" / "validation.md").read_text()
    for line in doc.splitlines():
        if line.startswith("![") and "](" in line:
            assert (ROOT / "docs" / line.split("](")[1].rstrip(")")).is_file(), line
