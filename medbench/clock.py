"""The fixed clinical "now" of MedAgentBench: every task, grader and synthetic record agrees on it."""

from datetime import datetime, timezone

NOW = datetime(2023, 11, 13, 10, 15, tzinfo=timezone.utc)
NOW_ISO = "2023-11-13T10:15:00+00:00"
