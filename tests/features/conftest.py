"""Shared tiny-frame helpers for the feature tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from features.contracts import event_schema


def ts(day: str) -> datetime:
    """``"2024-03-01"`` or ``"2024-03-01 13:30"`` as a UTC datetime."""
    fmt = "%Y-%m-%d %H:%M" if " " in day else "%Y-%m-%d"
    return datetime.strptime(day, fmt).replace(tzinfo=UTC)


def events(*rows: tuple[Any, ...]) -> pl.DataFrame:
    """Build a validated events frame from ``(customer_id, day, event_type, {optional})`` rows."""
    records = []
    for row in rows:
        customer_id, day, event_type, *rest = row
        extra: dict[str, Any] = rest[0] if rest else {}
        records.append(
            {"customer_id": customer_id, "ts": ts(day), "event_type": event_type, **extra}
        )
    return pl.DataFrame(records, schema=event_schema())


def order(customer_id: str, day: str, amount: float, **kw: Any) -> tuple[Any, ...]:
    """An ``order`` row."""
    return (customer_id, day, "order", {"amount": amount, **kw})


def row(snapshot: pl.DataFrame, customer_id: str) -> dict[str, Any]:
    """The snapshot row of one customer as a dict."""
    rows = snapshot.filter(pl.col("customer_id") == customer_id).to_dicts()
    assert len(rows) == 1, f"expected one row for {customer_id}, got {len(rows)}"
    return rows[0]


AS_OF = date(2024, 6, 30)
