"""Where the tests find the official MedAgentBench assets, and one way to skip without them.

The assets are never committed: the tests read them from `$MEDBENCH_OFFICIAL_DIR`, else from
`../shared/medagentbench` beside the checkout. A newcomer's clone has neither, so every test
that needs them skips with `MISSING` in its reason; CI has them, and `tests/conftest.py` turns
such a skip into a failure there (`CI=true`), so a CI run never passes with them silently unread.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OFFICIAL_DIR = Path(os.environ.get("MEDBENCH_OFFICIAL_DIR") or ROOT.parent / "shared" / "medagentbench")
# MedAgentBench v2's reference copies (tasks, system prompts, labels): $MEDBENCH_V2_DIR or ../shared.
OFFICIAL_V2_DIR = Path(os.environ.get("MEDBENCH_V2_DIR") or ROOT.parent / "shared" / "medagentbench_v2")
MISSING = "official assets not found"


def missing_reason(path: Path = OFFICIAL_DIR) -> str:
    return f"{MISSING} at {path} (set MEDBENCH_OFFICIAL_DIR / MEDBENCH_V2_DIR, or place them in ../shared)"


def require_official(path: Path = OFFICIAL_DIR) -> Path:
    """Skip the calling test unless the official asset (file or folder) exists; return its path."""
    if not path.exists():
        pytest.skip(missing_reason(path))
    return path


needs_official = pytest.mark.skipif(not OFFICIAL_DIR.is_dir(), reason=missing_reason())
needs_official_v2 = pytest.mark.skipif(not OFFICIAL_V2_DIR.is_dir(), reason=missing_reason(OFFICIAL_V2_DIR))
