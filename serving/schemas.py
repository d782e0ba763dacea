"""Request and response models of the scoring API (explicit pydantic models, all in OpenAPI)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    field_validator,
    model_validator,
)

from features.contracts import (
    CHANNELS,
    EVENT_REQUIRES,
    EVENT_TYPES,
    SCORE_RANGES,
    feature_info,
)
from features.events import BLANK_CHARS, CONTROL_CHARS, MAX_VALUE_CHARS
from models.artifact import MAX_INPUT
from models.explain import MAX_REASONS
from models.tasks import task_names
from serving.settings import MAX_BATCH

__all__ = [
    "CUSTOMER_ID_PATTERN",
    "MAX_BATCH",
    "MAX_REASONS",
    "PATTERN_REASONS",
    "TASKS_PATTERN",
    "AtRiskCustomer",
    "Band",
    "BatchScoreRequest",
    "BatchScoreResponse",
    "Bool",
    "CategoryScore",
    "CustomerId",
    "CustomerResult",
    "CustomerScores",
    "CustomerValue",
    "EquityResponse",
    "ErrorResponse",
    "EventIn",
    "FieldError",
    "ForecastFigures",
    "Health",
    "Int",
    "ModelInfo",
    "ModelInput",
    "ModelsResponse",
    "NonNegative",
    "Number",
    "Readiness",
    "Reason",
    "ReasonGroup",
    "ReloadResponse",
    "Remainder",
    "ScoreRequest",
    "SegmentCustomers",
    "SegmentSummary",
    "SegmentsResponse",
    "SnapshotInfo",
    "TaskName",
    "TaskScore",
    "Text",
    "ValidationErrorResponse",
    "ValueValidation",
    "feature_range",
    "out_of_range",
    "range_reason",
]

Band = Literal["low", "medium", "high"]


_TASK = "(?:" + "|".join(re.escape(name) for name in task_names()) + ")"

TASKS_PATTERN = rf"^(?: *{_TASK} *(?:, *{_TASK} *)*)?$"
"""A comma-separated list of task names (spaces around a name allowed), or nothing for all."""

CUSTOMER_ID_PATTERN: Final = (
    rf"^[^{CONTROL_CHARS}]*[^{BLANK_CHARS}{CONTROL_CHARS}][^{CONTROL_CHARS}]*$"
)
"""A customer id: not blank, and no control characters (a body's id and a path's alike)."""

CustomerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_VALUE_CHARS,
        pattern=CUSTOMER_ID_PATTERN,
        description="Not blank; no control characters (tab, line break, NUL, ...).",
    ),
]
"""A customer id as the events contract takes it (:func:`features.events.validate_events`)."""

Text = Annotated[str, Field(max_length=MAX_VALUE_CHARS)]
"""A text value of the events contract: at most ``MAX_VALUE_CHARS`` characters."""


def _json_number(value: object) -> object:
    """Refuse what JSON does not call a number (``true``, ``"5"``) before pydantic converts it."""
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number")
    return value


Int = Annotated[int, BeforeValidator(_json_number)]
"""A body's integer: a JSON number without a fraction (``5`` or ``5.0``), never ``true`` or
``"5"`` (pydantic's lax mode would take both, though the document says integer)."""

Number = Annotated[float, BeforeValidator(_json_number)]
"""A body's number: a JSON number, never ``true`` or ``"5"``."""

NonNegative = Annotated[float, Field(ge=0), BeforeValidator(_json_number)]
"""A body's number of at least 0 (the bound first: after the validator, pydantic's document
would say ``ge`` instead of ``minimum`` inside an ``anyOf``)."""


def _model_input(value: float) -> float:
    """Refuse a number the models cannot read as itself (they read float32)."""
    if not abs(value) <= MAX_INPUT:  # NaN too
        raise ValueError(f"must be a finite number of at most {MAX_INPUT!r} in size")
    return value


ModelInput = Annotated[
    float,
    Field(json_schema_extra={"minimum": -MAX_INPUT, "maximum": MAX_INPUT}),
    BeforeValidator(_json_number),
    AfterValidator(_model_input),
]
"""A model input sent as is: a JSON number of at most :data:`~models.artifact.MAX_INPUT`
(float32's largest, about 3.4e38) in size; a larger one would reach the models as infinite, so
it is a 422 naming the feature (and so are ``NaN`` and ``Infinity``, which Python's JSON reader
takes)."""

_UNIT_RANGES: Final[dict[str, tuple[float | None, float | None]]] = {
    "count": (0.0, None),
    "days": (0.0, None),
    "money": (0.0, None),
    "ratio": (0.0, 1.0),
    "trend": (-1.0, 1.0),
    "flag": (0.0, 1.0),
}
"""The range of a registered feature by its unit (:data:`features.contracts.FeatureUnit`): counts,
days and money from events that are at least 0 (an ``order``'s ``amount`` is), shares, rates
and probabilities, the signed 90-day trends, the 0/1 flags."""

_RANGES: Final[dict[str, tuple[float | None, float | None]]] = {
    # a margin may be negative (the events contract's margin column)
    "margin_total": (None, None),
    "margin_365d": (None, None),
    # days since the last order over the usual gap, returns over spend: past 1 when late, or
    # when more was returned than bought
    "overdue_ratio": (0.0, None),
    "return_rate": (0.0, None),
    # the quintile scores of features.rfm, the survey's and the review's own ranges
    **dict.fromkeys(("r_score", "f_score", "m_score"), (1.0, 5.0)),
    "survey_last_score": SCORE_RANGES["survey"],
    "survey_mean_score": SCORE_RANGES["survey"],
    "review_mean_rating": SCORE_RANGES["review"],
}
"""Registered features whose range is not their unit's (:data:`_UNIT_RANGES`)."""


def feature_range(name: str) -> tuple[float | None, float | None] | None:
    """Return the values a snapshot column can take, where the feature registry makes it certain.

    ``POST /v1/score`` refuses a feature value outside it (``recency_days: -5`` read "-5 days
    since the last order", ``r_score: 9`` "recency score 9 of 5").

    Parameters
    ----------
    name : str
        A feature name, e.g. ``"recency_days"`` or ``"cat_garden_share"``.

    Returns
    -------
    tuple of (float or None, float or None) or None
        The least and the greatest value (None: no bound on that side); None for a name that is
        not a registered feature (a customers file's own column: no bound is known) or one
        without a number's range (a text, a score the registry gives no scale of).
    """
    try:
        feature = feature_info(name)
    except KeyError:
        return None
    return _RANGES.get(feature.extra.get("template", name), _UNIT_RANGES.get(feature.unit))


def range_reason(name: str) -> str | None:
    """Say the range a feature's value must be in, as a 422 says it (never the value sent).

    Parameters
    ----------
    name : str
        A feature name.

    Returns
    -------
    str or None
        E.g. ``"should be at least 0 (N days since the last order)"`` or ``"should be from 1 to
        5 (recency score N of 5)"``; None when :func:`feature_range` knows no bound.
    """
    bounds = feature_range(name)
    if bounds is None or bounds == (None, None):
        return None
    low, high = bounds
    if high is None:
        span = f"at least {low:g}"
    elif low is None:
        span = f"at most {high:g}"
    else:
        span = f"from {low:g} to {high:g}"
    meaning = feature_info(name).description.replace("{value}", "N")
    return f"should be {span} ({meaning})"


def out_of_range(name: str, value: float | None) -> bool:
    """Return whether a feature's value is outside :func:`feature_range` (a null never is).

    Parameters
    ----------
    name : str
        A feature name.
    value : float or None
        The value sent.

    Returns
    -------
    bool
        True when ``value`` is below the least or above the greatest value the feature takes.
    """
    bounds = feature_range(name)
    if value is None or bounds is None:
        return False
    low, high = bounds
    return (low is not None and value < low) or (high is not None and value > high)


Bool = Annotated[bool, Strict()]
"""A body's boolean: ``true`` or ``false``, never ``1`` or ``"yes"``."""

TaskName = Annotated[str, Field(pattern=rf"^{_TASK}$", description="A registered task's name.")]
"""One registered task's name (:func:`models.tasks.task_names`); any other is a 422."""

PATTERN_REASONS: Final = {
    TASKS_PATTERN: f"comma-separated task names, each one of {', '.join(task_names())}",
    rf"^{_TASK}$": f"a task name, one of {', '.join(task_names())}",
    CUSTOMER_ID_PATTERN: "not blank, and no control characters (tab, line break, NUL, ...)",
}
"""What a 422 says for a value that does not match one of these patterns, instead of the
regular expression itself."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reason(BaseModel):
    """One feature's part in a score."""

    feature: str = Field(description="Model input column.")
    group: str = Field(description="Business concept: rfm, engagement, service, loyalty, ...")
    value: float | None = Field(description="The customer's value of the feature (null: missing).")
    contribution_points: float = Field(
        description="Contribution to the calibrated probability, in percentage points. The "
        "reasons' points plus other_inputs' are exactly 100 × (probability − base_probability)."
    )
    contribution_log_odds: float = Field(
        description="Contribution to the uncalibrated model margin (log_odds), in log-odds "
        "(exact TreeSHAP): base_log_odds plus every input's contribution is log_odds."
    )
    sentence: str = Field(description="The reason as a person reads it.")


class Remainder(BaseModel):
    """What the inputs not listed as reasons add together (the line "N other inputs together")."""

    inputs: int = Field(ge=0, description="How many model inputs the line stands for.")
    contribution_points: float = Field(
        description="Their contribution in percentage points: with the reasons' points, exactly "
        "100 × (probability − base_probability)."
    )
    contribution_log_odds: float = Field(
        description="Their contribution to the uncalibrated margin: with the reasons' log-odds "
        "and base_log_odds, exactly log_odds."
    )
    sentence: str = Field(
        description='E.g. "31 other inputs together: raise churn risk by 1.2 points"; "no '
        'other input: the reasons are every input" when inputs is 0.'
    )


class ReasonGroup(BaseModel):
    """Reasons of one business concept with their summed contribution."""

    group: str
    contribution_points: float = Field(description="Sum of the group's reasons, points.")
    contribution_log_odds: float = Field(
        description="Sum of the group's reasons, log-odds of the uncalibrated margin."
    )
    reasons: list[Reason]


class CategoryScore(BaseModel):
    """A cross-sell category the customer has not bought yet, with its score."""

    category: str
    rank: int = Field(ge=1, description="1 = the most likely next category.")
    probability: float = Field(ge=0, le=1)


class TaskScore(BaseModel):
    """A customer's score for one task, or the status that says why there is none.

    A task scores its population only (e.g. churn: customers with an order in the active
    window). Everyone else gets a ``status`` and ``status_reason`` and no probability, decile,
    band or reasons. For a ranked task (cross-sell) the probability, decile, band and reasons are
    those of the top category.
    """

    task: str = Field(description="A loaded task (see GET /v1/models).")
    status: str = Field(
        description="'eligible' when the task scores the customer; otherwise why not, from the "
        "task's population: 'lapsed' (no order in the active window: a win-back candidate), "
        "'prospect' (never ordered), 'no_candidates' (a ranked task with nothing left to rank)."
    )
    status_reason: str | None = Field(
        default=None, description="The status in words; null when the customer is scored."
    )
    probability: float | None = Field(ge=0, le=1, description="Calibrated probability.")
    decile: int | None = Field(
        ge=1,
        le=10,
        description="1 = the top tenth of the population's scores in the snapshot, as batch "
        "scoring.",
    )
    band: Band | None
    log_odds: float | None = Field(
        description="The model's uncalibrated margin (log-odds before calibration); "
        "probability is the calibration of it."
    )
    base_log_odds: float | None = Field(
        description="The uncalibrated margin of the average customer (TreeSHAP bias): "
        "base_log_odds plus every input's contribution_log_odds is log_odds."
    )
    base_probability: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The calibrated probability of the average customer, where the reasons' "
        "points start from.",
    )
    model_name: str
    model_version: str
    model_served_by: str | None = Field(
        default=None,
        description="What scores for the model version: 'XGBoost' for a trained model, the "
        "rule's name (cross-sell: 'affinity rule') for a rule-backed version, served when the "
        "model does not beat its rule.",
    )
    snapshot_date: date | None = Field(description="As-of day of the features; null if live.")
    reasons: list[Reason] = Field(default_factory=list)
    other_inputs: Remainder | None = Field(
        default=None,
        description="The inputs not listed as reasons, together; with the reasons it sums to "
        "probability − base_probability (points) and log_odds − base_log_odds (log-odds). Null "
        "when no reasons were asked for.",
    )
    missing_inputs: list[str] | None = Field(
        default=None,
        description="POST /v1/score with features: the model inputs the request did not send "
        "(counted as missing values, never given as reasons); null otherwise.",
    )
    groups: list[ReasonGroup] | None = Field(
        default=None, description="Reasons by concept (group=true)."
    )
    categories: list[CategoryScore] | None = Field(
        default=None, description="Ranked tasks (cross_sell) only, best first."
    )


class CustomerScores(BaseModel):
    """Scores of one customer for the requested tasks."""

    customer_id: str
    scores: dict[str, TaskScore]


class CustomerResult(BaseModel):
    """One id of a batch: its scores, or why there are none."""

    customer_id: str
    status: Literal["ok", "unknown"]
    scores: dict[str, TaskScore] = Field(default_factory=dict)


class BatchScoreRequest(_Strict):
    """Scores for up to :data:`MAX_BATCH` customers of the loaded snapshot."""

    customer_ids: list[CustomerId] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Each not blank and without control characters, as POST /v1/score's "
        "customer_id: a bad one is a 422 naming its index (body.customer_ids.3).",
    )
    tasks: list[TaskName] | None = Field(default=None, description="Default: every loaded task.")
    explain: Int = Field(default=5, ge=0, le=MAX_REASONS, description="Reasons per task.")
    group: Bool = Field(default=False, description="Also group the reasons by business concept.")


class BatchScoreResponse(BaseModel):
    """Per-id results, in request order; unknown ids are reported, not failed."""

    results: list[CustomerResult]
    unknown: int = Field(description="How many ids are not in the snapshot.")
    hint: str | None = Field(
        default=None,
        description="Why ids are unknown, when the server can tell: unknown ids with "
        "whitespace before or after them (ids are matched exactly, never trimmed); null "
        "otherwise.",
    )


def _event_rules() -> list[JsonValue]:
    """Say the events contract's rules per event type as JSON Schema ``if``/``then`` pairs.

    The fields some event types need (``EVENT_REQUIRES``) and the ``score`` range of surveys and
    reviews (``SCORE_RANGES``): :func:`features.events.validate_events` checks them, the document
    says them.
    """
    rules: list[JsonValue] = []
    for event_type in EVENT_TYPES:
        needs = EVENT_REQUIRES.get(event_type, ())
        then: dict[str, JsonValue] = {
            "required": list(needs),
            "properties": {name: {"not": {"type": "null"}} for name in needs},
        }
        if event_type in SCORE_RANGES:
            low, high = SCORE_RANGES[event_type]
            then["properties"] = {"score": {"type": "number", "minimum": low, "maximum": high}}
        if needs or event_type in SCORE_RANGES:
            when: JsonValue = {"properties": {"event_type": {"const": event_type}}}
            rules.append({"if": when, "then": then})
    return rules


_EDGE_DAYS = re.compile(r"^(0001-01-01|9999-12-31)")
"""The calendar's first and last days: a time on them with an offset may not exist in UTC."""


class EventIn(_Strict):
    """One interaction, as in the events contract (``customer_id`` comes from the request).

    The server checks the contract (:func:`features.events.validate_events`): the allowed event
    types and channels, non-negative amounts and quantities, the fields some event types need and
    the score ranges, and no timestamp after the current time; a row breaking one is a 422.
    """

    model_config = ConfigDict(json_schema_extra={"allOf": _event_rules()})

    ts: datetime = Field(
        description=(
            "When it happened; not after the current time, and not on 0001-01-01 or 9999-12-31 "
            "(with an offset, such a time may fall outside the calendar once in UTC)."
        ),
        json_schema_extra={"not": {"pattern": _EDGE_DAYS.pattern}},
    )
    event_type: str = Field(json_schema_extra={"enum": list(EVENT_TYPES)})
    channel: str | None = Field(default=None, json_schema_extra={"enum": [*CHANNELS, None]})
    amount: NonNegative | None = None
    margin: Number | None = None
    quantity: NonNegative | None = None
    category: Text | None = None
    score: Number | None = None
    ref_id: Text | None = None

    @field_validator("ts")
    @classmethod
    def _within_calendar(cls, ts: datetime) -> datetime:
        if _EDGE_DAYS.match(ts.date().isoformat()):
            raise ValueError("ts is on the calendar's first or last day; it may not exist in UTC")
        return ts


class ScoreRequest(_Strict):
    """One customer's features, or raw events, scored through the same pipeline."""

    # the document says what the validator checks: exactly one of the two, not null
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["features"], "properties": {"features": {"type": "object"}}},
                {"required": ["events"], "properties": {"events": {"type": "array"}}},
            ]
        }
    )

    customer_id: CustomerId = Field(default="adhoc", description="Used only to key the result.")
    features: dict[str, ModelInput | None] | None = Field(
        default=None,
        description=(
            "Snapshot columns and model inputs by name (the loaded snapshot's and models'; any "
            "other name is a 422); missing ones count as missing values. A value is at most "
            f"{MAX_INPUT!r} in size (the models read float32); a larger one is a 422, and so is "
            "a registered feature's value outside what it can take (recency_days below 0, an "
            "RFM score outside 1-5), naming the range. recency_days is needed by the tasks "
            "scoring active customers (churn, referral) unless orders_total is 0: a 422 when "
            "it is not sent; null means no order yet, a 422 beside an order count above 0."
        ),
    )
    events: list[EventIn] | None = Field(default=None, min_length=1, max_length=100_000)
    as_of: date | None = Field(
        default=None,
        description="For events: the snapshot day (default: the last event's day); a day after "
        "today is a 422.",
    )
    tasks: list[TaskName] | None = Field(default=None, description="Default: every loaded task.")
    explain: Int = Field(default=5, ge=0, le=MAX_REASONS)
    group: Bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ScoreRequest:
        if (self.features is None) == (self.events is None):
            raise ValueError("give exactly one of 'features' or 'events'")
        return self


class SnapshotInfo(BaseModel):
    """The loaded feature snapshot."""

    as_of: date
    feature_set_version: str
    customers: int
    explained: dict[str, float] = Field(
        description="Per task, the share of snapshot rows whose reasons are already computed."
    )


class ModelInfo(BaseModel):
    """A loaded model and its provenance."""

    task: str
    model_name: str
    version: str
    served_by: str = Field(
        default="XGBoost",
        description="What scores: 'XGBoost' for a trained model, the rule's name (cross-sell: "
        "'affinity rule') for a rule-backed version, served when the model does not beat its rule "
        "(its own held-out metrics are metrics['rule_backed']).",
    )
    aliases: list[str] = Field(
        description="The registry's aliases of this version at load (see loaded_at): a "
        "promotion since then shows in reload_pending, not here."
    )
    reload_pending: bool | None = Field(
        default=None,
        description="True when the registry's alias the server follows (champion unless "
        "GUANXI_MODEL_ALIAS says otherwise) now points at another version than the one loaded "
        "(or at none): `POST /v1/admin/reload` or a restart would change this task's model; "
        "false when it points at this one (always false in the reload's answer); null when "
        "the registry could not be read (GET /v1/models waits for it at most 2 s).",
    )
    feature_set_version: str
    features: int
    categories: list[str]
    metrics: dict[str, dict[str, float | None]] = Field(
        description="Held-out metrics recorded at training, by model then metric "
        '(e.g. {"xgboost": {"roc_auc": 0.8}, "rule": {"roc_auc": 0.7}}).'
    )
    grade: str | None


_NOT_SERVED: Final = (
    "The tasks this server leaves out of service, each with why and what to do (the sentence "
    "/readyz gives, e.g. its champion's files are missing: put them back, promote another "
    "version by number or train again, then reload); their requests are a 503 saying the "
    "same. Empty when every task serves."
)


class ModelsResponse(BaseModel):
    """Everything that is loaded."""

    models: list[ModelInfo]
    snapshot: SnapshotInfo
    loaded_at: datetime
    not_served: dict[str, str] = Field(default_factory=dict, description=_NOT_SERVED)


class ReloadResponse(BaseModel):
    """Outcome of a successful reload."""

    reloaded: Literal[True] = True
    models: list[ModelInfo]
    snapshot: SnapshotInfo
    generation: int | None = Field(
        default=None,
        description="With several workers: the reload generation written for the other workers "
        "(null with one worker).",
    )
    workers_loaded: int = Field(
        default=1, description="Workers serving the new state (this one included)."
    )
    workers_failed: int = Field(
        default=0, description="Other workers whose load failed (they keep their previous state)."
    )
    workers_waiting: int = Field(
        default=0,
        description="Other workers still loading when GUANXI_RELOAD_WAIT_SECONDS ran out.",
    )
    not_served: dict[str, str] = Field(default_factory=dict, description=_NOT_SERVED)


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: models and snapshot loaded, explainer warmed up."""

    ready: bool
    detail: str | None = Field(
        default=None,
        description=(
            "Why not ready: what the store or registry lacks and what to run (as the API's 503 "
            "says it), still loading, the last load failed, or warming up the explainer. When "
            "ready, the tasks not served because their champion's files are gone (the others "
            "serve), as those tasks' 503 says it; null when every task serves."
        ),
    )


class ErrorResponse(BaseModel):
    """Any error other than a validation error."""

    detail: str


class FieldError(BaseModel):
    """One invalid field: where and why, never the value."""

    field: str = Field(description="Dotted location, e.g. 'body.customer_ids'.")
    reason: str


class ValidationErrorResponse(BaseModel):
    """A 422: every invalid field."""

    detail: list[FieldError]


# --- customer value (issue 11; serving.values) ---------------------------------------------


class CustomerValue(BaseModel):
    """A customer's value as of the value table's day (``guanxi value``)."""

    customer_id: str
    as_of: date = Field(description="Day the values were computed as of.")
    p_alive: float | None = Field(ge=0, le=1, description="BG/NBD P(still an active buyer).")
    expected_purchases: float | None = Field(description="Orders expected in horizon_days.")
    expected_order_value: float | None = Field(description="Gamma-Gamma revenue per order.")
    expected_margin_per_order: float | None = Field(
        default=None, description="What each future order earns in the CLV."
    )
    clv: float | None = Field(description="Probabilistic CLV over horizon_days, discounted.")
    clv_textbook: float | None = Field(
        description="sum m r^t / (1 + d)^t with the churn model's retention; null without one."
    )
    expected_days_to_next_order: float | None = Field(
        description="Median days to the next order, given the customer is still a buyer."
    )
    value_tier: str | None = Field(description="top_1pct, top_5pct, top_20pct or rest by CLV.")
    rfm_segment: str | None
    churn_probability: float | None = Field(
        description="The churn champion's calibrated probability; null outside its population."
    )
    churn_status: str | None = Field(
        default=None,
        description="eligible, or why there is no churn probability: the churn model's "
        "population (lapsed, prospect, ...), or no_churn_model when the table was computed "
        "without one.",
    )
    equity_at_risk: float | None = Field(description="churn_probability x clv.")
    horizon_days: int
    discount_rate: float = Field(description="Annual discount rate.")
    value_version: str = Field(description="The value table: its day and MLflow run.")
    churn_model_version: str | None = Field(
        default=None,
        description="The version of the churn model whose probabilities the value table read "
        "(churn_probability, clv_textbook and equity_at_risk are its); null when it was computed "
        "without one. A churn model promoted since is not it: GET /v1/customers/{id}/scores "
        "names the served version.",
    )
    churn_horizon_days: int | None = Field(
        default=None,
        description="That churn model's horizon: churn_probability is the chance of churning "
        "within these days; null without a churn model.",
    )


class SegmentSummary(BaseModel):
    """Customer equity of one RFM segment, one value tier, or of everyone (``all``)."""

    name: str = Field(description="Segment or tier; 'none' for customers without one.")
    customers: int
    scored: int = Field(description="Customers with a churn probability.")
    revenue: float = Field(description="Revenue of the last 365 days, summed.")
    mean_clv: float | None
    equity: float = Field(description="Sum of CLV.")
    equity_share: float | None = Field(description="Share of the overall equity.")
    mean_churn_probability: float | None = Field(description="Churn risk of the scored.")
    equity_at_risk: float | None = Field(
        description="Sum of churn_probability x clv; null when the value table holds no churn "
        "probability (churn_missing says why). A group none of whose customers has one (scored "
        "0, e.g. only lapsed customers) has 0 here: not measured, not no risk."
    )
    risk_share: float | None = Field(description="equity_at_risk / equity.")


class SegmentsResponse(BaseModel):
    """Customer equity per RFM segment and per value tier; each list sums to ``overall``."""

    as_of: date
    horizon_days: int
    discount_rate: float
    value_version: str
    overall: SegmentSummary
    rfm_segments: list[SegmentSummary]
    value_tiers: list[SegmentSummary]
    churn_missing: str | None = Field(
        default=None,
        description="Null when the value table holds churn probabilities; else why it holds none "
        "and what to run (equity at risk is then unknown: null, not 0).",
    )


class ForecastFigures(BaseModel):
    """A purchase forecast against the purchases that followed."""

    customers: int
    mae: float | None = Field(description="Mean absolute error per customer.")
    correlation: float | None = Field(description="Pearson correlation with the actual counts.")
    forecast_total: float
    actual_total: float
    aggregate_error: float | None = Field(description="forecast_total / actual_total - 1.")


class ValueValidation(BaseModel):
    """The numeric validation: fitted up to ``cutoff``, purchases in ``(cutoff, through]``."""

    cutoff: date
    through: date
    days: int
    forecasts: dict[str, ForecastFigures] = Field(
        description="'bgnbd' and the naive 'same as last period' baseline."
    )


class AtRiskCustomer(BaseModel):
    """One of the customers carrying most of the equity at risk."""

    customer_id: str
    clv: float
    churn_probability: float
    equity_at_risk: float
    cumulative_share: float = Field(description="Share of the total equity at risk so far.")


class EquityResponse(BaseModel):
    """Customer equity, equity at risk, the fit's checks and who carries the risk."""

    as_of: date
    horizon_days: int
    discount_rate: float
    basis: str = Field(description="What a purchase earns: margin, or revenue x a margin rate.")
    value_version: str
    overall: SegmentSummary
    churn_model: dict[str, str | int] | None = Field(
        description="The churn model read (name, version, horizon_days); null without one."
    )
    validation: ValueValidation | None = Field(description="Null when it could not be checked.")
    top_at_risk: list[AtRiskCustomer] | None = Field(
        description="The fewest customers carrying half the equity at risk (at most 100); null "
        "when the value table holds no churn probability (churn_missing says why)."
    )
    churn_missing: str | None = Field(
        default=None,
        description="Null when the value table holds churn probabilities; else why it holds none "
        "and what to run (equity at risk is then unknown: null, not 0).",
    )


class SegmentCustomers(BaseModel):
    """The customers of one segment or tier, highest CLV first."""

    segment: str
    kind: Literal["rfm_segment", "value_tier"]
    as_of: date
    value_version: str
    count: int = Field(
        description="Customers in the segment or tier: all of them, whatever limit and offset."
    )
    customers: list[CustomerValue] = Field(
        description="Highest CLV first (then by id); with limit and offset, that page of them."
    )
