"""The refusal of a day to come, shared by the commands' ``--as-of`` and the API's ``as_of``.

Standard library only: :mod:`pipelines.days` words the commands' refusal with it, and serving
may not import :mod:`pipelines` (the import contracts), so the sentence is kept here, once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

__all__ = ["in_the_future"]


def in_the_future(day: date, today: date | None = None) -> str | None:
    """Say that a day is after today (UTC), without naming the day: its events are not in yet.

    Parameters
    ----------
    day : datetime.date
        The day given (``--as-of``, a body's ``as_of``).
    today : datetime.date, optional
        Today; default: today's date in UTC.

    Returns
    -------
    str or None
        ``is in the future (today is <today> UTC): its events are not in yet; give <today> or
        an earlier day``, or None when ``day`` is today or before. A 422 says it as is (it never
        repeats a value sent); :func:`pipelines.days.after_today` puts the option and the day
        before it.
    """
    today = today or datetime.now(UTC).date()
    if day <= today:
        return None
    return (
        f"is in the future (today is {today} UTC): its events are not in yet; "
        f"give {today} or an earlier day"
    )
