"""The CDNOW 1/10 sample (tests/data/CDNOW_sample.txt) as validated events.

Fader, Hardie and Lee (2005) calibrate on the 39 weeks to 1997-09-30 and hold out the 39 weeks
after; every published figure the tests check is in weeks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import polars as pl

from features.contracts import event_schema

__all__ = ["CALIBRATION_END", "HOLDOUT_END", "PATH", "cdnow_events"]

PATH = Path(__file__).parent / "data" / "CDNOW_sample.txt"
CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_END = date(1998, 6, 30)


@cache
def cdnow_events() -> pl.DataFrame:
    """Every purchase as an ``order`` event of customer ``0001``-``2357`` (the sample's own ids)."""
    rows = [line.split() for line in PATH.read_text().splitlines() if line.strip()]
    frame = pl.DataFrame(
        {
            "customer_id": [r[1] for r in rows],
            "ts": [datetime.strptime(r[2], "%Y%m%d").replace(tzinfo=UTC) for r in rows],
            "event_type": ["order"] * len(rows),
            "quantity": [float(r[3]) for r in rows],
            "amount": [float(r[4]) for r in rows],
        }
    )
    schema = event_schema()
    return frame.select(
        pl.col(c) if c in frame.columns else pl.lit(None).alias(c) for c in schema
    ).cast(schema)  # type: ignore[arg-type]
