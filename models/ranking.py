"""Deciles and bands: the one rule batch scoring, training evaluation and serving all use.

A decile ranks rows by score: decile 1 holds the 10 % highest scores, 10 the lowest; rank bins are
equal-sized (sizes differ by at most one row) and equal scores keep row order (a stable sort
decides), so batch scores, gains tables and served deciles agree to the row. A new score that is
not among the ranked rows (a live score) is placed among them by :func:`decile_among`, which gives
the decile :func:`deciles` would give a score that ties with none. Bands group deciles for people:
``high`` up to a decile, then ``medium`` up to another, then ``low``.

A ranked task (cross-sell: one row per customer and category) ranks *customers* by their best
category's probability, not rows (:func:`ranked_deciles`): a marketer acts on a customer's top
category, and per-row deciles put most customers' best row in the top deciles whatever its
probability. Each customer's best row gets the decile of its probability among the customers'
best probabilities; every other row is placed on that same probability scale
(:func:`decile_among`), never above its customer's best row (equal scores could), so a
customer's band is the band of their top category's probability.
"""

from __future__ import annotations

from typing import Final

import numpy as np

__all__ = ["BANDS", "band", "best_rows", "decile_among", "deciles", "rank_bins", "ranked_deciles"]

BANDS: Final[tuple[str, ...]] = ("high", "medium", "low")
"""Band names, highest scores first."""


def rank_bins(score: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Equal-sized rank bins, 1 for the highest scores.

    Parameters
    ----------
    score : numpy.ndarray
        Scores, shape ``(n,)``.
    n_bins : int, default 10
        Number of bins.

    Returns
    -------
    numpy.ndarray
        Int64 bins: ``1 + floor(n_bins * rank / n)`` with rank 0 for the highest score; equal
        scores keep row order (a stable sort decides), so bin sizes differ by at most one row.
    """
    n = len(score)
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    bins = np.empty(n, dtype=np.int64)
    bins[order] = np.arange(n) * n_bins // max(n, 1) + 1
    return bins


def deciles(score: np.ndarray) -> np.ndarray:
    """Decile of each score, 1 for the highest 10 %, 10 for the lowest.

    Parameters
    ----------
    score : numpy.ndarray
        Scores, shape ``(n,)``.

    Returns
    -------
    numpy.ndarray
        Int8 deciles (:func:`rank_bins` with 10 bins).
    """
    return rank_bins(score, 10).astype(np.int8)


def decile_among(population: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Place new scores among ranked ones: ``1 + floor(10 * share strictly above)``, at most 10.

    Parameters
    ----------
    population : numpy.ndarray
        The ranked rows' scores, sorted ascending.
    score : numpy.ndarray
        New scores.

    Returns
    -------
    numpy.ndarray
        Int64 deciles, as :func:`deciles` gives a score that ties with none of ``population``
        (1 for every score when ``population`` is empty).
    """
    n = len(population)
    if n == 0:
        return np.ones(len(score), dtype=np.int64)
    higher = n - np.searchsorted(population, score, side="right")
    return np.minimum(1 + (10 * higher) // n, 10).astype(np.int64)


def band(decile: np.ndarray, high: int, medium: int) -> np.ndarray:
    """Band of each decile: ``high`` up to ``high``, ``medium`` up to ``medium``, else ``low``.

    Parameters
    ----------
    decile : numpy.ndarray
        Deciles (1 = top tenth).
    high, medium : int
        Last decile of the ``high`` and of the ``medium`` band.

    Returns
    -------
    numpy.ndarray
        Band names (:data:`BANDS`), one per decile.
    """
    d = np.asarray(decile)
    return np.where(d <= high, BANDS[0], np.where(d <= medium, BANDS[1], BANDS[2]))


def best_rows(groups: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mark each group's highest-scoring row (the first in row order among equal scores).

    Parameters
    ----------
    groups : numpy.ndarray
        Group of each row (e.g. the customer of a ranked task's row), shape ``(n,)``.
    score : numpy.ndarray
        Scores, shape ``(n,)``.

    Returns
    -------
    numpy.ndarray
        Boolean mask, true on exactly one row per group.
    """
    s = np.asarray(score, dtype=np.float64)
    mask = np.zeros(len(s), dtype=bool)
    if len(s):
        _, codes = np.unique(np.asarray(groups), return_inverse=True)
        by_score = np.lexsort((-s, codes))  # stable: per group, highest first, then row order
        sorted_codes = codes[by_score]
        mask[by_score[np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]]] = True
    return mask


def ranked_deciles(score: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deciles of a ranked task's rows on the scale of each customer's best score.

    Parameters
    ----------
    score : numpy.ndarray
        Probabilities of the rows, shape ``(n,)``.
    groups : numpy.ndarray
        The customer of each row.

    Returns
    -------
    decile : numpy.ndarray
        Int8 deciles: a customer's best row (:func:`best_rows`) gets :func:`deciles` among the
        customers' best scores (one per customer, in row order); any other row the decile
        :func:`decile_among` gives its score among them, or its customer's best row's when that
        is lower (a tie with other customers' best scores can place it higher).
    reference : numpy.ndarray
        The customers' best scores, sorted ascending: what places a new score
        (:func:`decile_among`) on the same scale.
    """
    s = np.asarray(score, dtype=np.float64)
    best = best_rows(groups, s)
    decile = np.empty(len(s), dtype=np.int8)
    decile[best] = deciles(s[best])
    reference = np.sort(s[best])
    if len(s):
        _, codes = np.unique(np.asarray(groups), return_inverse=True)
        own = np.empty(codes.max() + 1, dtype=np.int64)
        own[codes[best]] = decile[best]
        placed = decile_among(reference, s[~best])
        decile[~best] = np.maximum(placed, own[codes[~best]])
    return decile, reference
