"""A version's registry aliases worded for people, as ``guanxi models`` and the model page say them.

Promotion moves ``champion`` onto the challenger and leaves ``challenger`` where it is, until the
next ``guanxi train`` moves it: a promoted challenger holds both aliases, which read as two roles
("@challenger @champion" on its model page). It is said as one: ``champion (was challenger)``,
by ``guanxi models`` (:mod:`pipelines.promote`) and the model page and overview
(:mod:`serving.ui.pages`, which may not import ``pipelines``) alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from models.registry import CHALLENGER, CHAMPION

__all__ = ["PROMOTED_NOTE", "shown_aliases"]

PROMOTED_NOTE: Final = f"(was {CHALLENGER})"
"""What follows ``champion`` on a promoted challenger."""


def shown_aliases(aliases: Sequence[str]) -> list[str]:
    """Word a version's aliases for people: a promoted challenger is ``champion (was challenger)``.

    Parameters
    ----------
    aliases : sequence of str
        The version's registry aliases.

    Returns
    -------
    list of str
        The aliases, ``champion`` and ``challenger`` on one version as one entry, first.
    """
    both = {CHAMPION, CHALLENGER}
    if not both <= set(aliases):
        return list(aliases)
    return [f"{CHAMPION} {PROMOTED_NOTE}", *(a for a in aliases if a not in both)]
