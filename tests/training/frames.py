"""Tiny hand-made event frames shared by the training tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from features.contracts import event_schema

CUTOFF = date(2025, 3, 31)


def events_frame(rows: list[tuple[str, datetime, str, str | None]]) -> pl.DataFrame:
    """Validated-looking events from (customer, ts, type, category) tuples; other columns null."""
    frame = pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "category": [r[3] for r in rows],
        },
        schema={
            "customer_id": pl.String,
            "ts": pl.Datetime("us", "UTC"),
            "event_type": pl.String,
            "category": pl.String,
        },
    )
    schema = event_schema()
    return frame.with_columns(
        pl.lit(None, dtype).alias(name) for name, dtype in schema.items() if name not in frame
    ).select(list(schema))


def at(day: date, hour: int = 12) -> datetime:
    """Noon (or ``hour``) UTC on ``day``."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def day(offset: int) -> date:
    """The day ``offset`` days after :data:`CUTOFF`."""
    return CUTOFF + timedelta(days=offset)
