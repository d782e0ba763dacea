"""Cross-sell: the chance of a first purchase of each category a customer has never bought.

Population: every customer known at the cutoff; one row per (customer, category) for every
category the customer has not ordered on or before the cutoff (a ``ranked`` task). Label 1 when the
customer's first order of that category falls in the window ``(c, c + H]``. Graded on the ranking
a marketer uses, precision@1/@3 and NDCG@3 per customer (:func:`models.metrics.ranked_grade`),
against the category-affinity rule "bought A, also bought B", with category popularity reported
beside it and ROC-AUC for information; ``guanxi promote`` compares precision@3 and NDCG@3. When the
model does not beat the rule, the rule itself is served as a version (``rule_backing``: its score
``candidate_affinity`` is one of the model's inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from models.labels import LABEL, bought_categories, category_orders, check_horizon, in_window
from models.metrics import GRADE_RULES, RANKED_METRICS, ranked_evaluation, ranked_grade
from models.rules import CategoryAffinityRule, CategoryPopularityRule
from models.tasks import Baseline, RuleBacking, TaskSpec

__all__ = ["SPEC", "cross_sell_labels"]


def cross_sell_labels(
    events: pl.DataFrame,
    cutoff: date,
    horizon: int,
    population: pl.DataFrame,
    categories: Sequence[str] = (),
) -> pl.DataFrame:
    """Cross-sell labels: first purchase of a not-yet-bought category in the window.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events; ``order`` categories are sanitised like the snapshot's columns
        (:func:`features.products.category_slug`) and rows with a null ``category`` are ignored.
    cutoff : datetime.date
        The cutoff day ``c``.
    horizon : int
        Label window length ``H`` in days: ``(c, c + H]``.
    population : polars.DataFrame
        Customers to label (``customer_id``).
    categories : sequence of str
        Candidate categories (sanitised names).

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``category``, ``label`` (Int8), one row per customer and category the
        customer had not ordered by ``c``, sorted by ``customer_id`` then ``category``.

    Raises
    ------
    ValueError
        If ``horizon < 1``.
    """
    check_horizon(horizon)
    bought_in = (
        category_orders(events, categories)
        .filter(in_window(cutoff, horizon))
        .select("customer_id", "category")
        .unique()
        .with_columns(pl.lit(1, dtype=pl.Int8).alias(LABEL))
    )
    candidates = (
        population.lazy()
        .select("customer_id")
        .unique()
        .join(
            pl.LazyFrame({"category": list(categories)}, schema={"category": pl.String}),
            how="cross",
        )
        .join(
            bought_categories(events, cutoff, categories),
            on=["customer_id", "category"],
            how="anti",
        )
    )
    return (
        candidates.join(bought_in, on=["customer_id", "category"], how="left")
        .with_columns(pl.col(LABEL).fill_null(0))
        .sort("customer_id", "category")
        .collect()
    )


SPEC = TaskSpec(
    name="cross_sell",
    title="Cross-sell",
    kind="ranked",
    order=30,
    labels=cross_sell_labels,
    rules=(
        Baseline("rule", CategoryAffinityRule(), "Affinity rule"),
        Baseline("popularity", CategoryPopularityRule()),
    ),
    outcome="purchase likelihood",
    purpose=(
        "Ranks, per customer, the product categories the customer has never bought by the "
        "probability of a first purchase in the next {horizon} days, to choose what to recommend."
    ),
    evaluate=ranked_evaluation,
    metrics=RANKED_METRICS,
    grade=ranked_grade,
    grade_rule=GRADE_RULES["ranked"],
    gate=("precision@3", "ndcg@3"),
    # the rule's own score is a model input (models.tasks.CANDIDATE_INPUTS): served as a model
    # version when the model does not beat the rule
    rule_backing=RuleBacking("candidate_affinity", "affinity rule"),
)
