"""Request and response models of the scoring API (explicit pydantic models, all in OpenAPI)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.explain import MAX_REASONS

__all__ = [
    "MAX_BATCH",
    "MAX_REASONS",
    "Band",
    "BatchScoreRequest",
    "BatchScoreResponse",
    "CategoryScore",
    "CustomerResult",
    "CustomerScores",
    "ErrorResponse",
    "EventIn",
    "FieldError",
    "Health",
    "ModelInfo",
    "ModelsResponse",
    "Readiness",
    "Reason",
    "ReasonGroup",
    "ReloadResponse",
    "ScoreRequest",
    "SnapshotInfo",
    "TaskScore",
    "ValidationErrorResponse",
]

Band = Literal["low", "medium", "high"]

MAX_BATCH = 1000
"""Most customer ids one ``POST /v1/scores`` may carry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reason(BaseModel):
    """One feature's part in a score."""

    feature: str = Field(description="Model input column.")
    group: str = Field(description="Business concept: rfm, engagement, service, loyalty, ...")
    value: float | None = Field(description="The customer's value of the feature (null: missing).")
    contribution_points: float = Field(
        description="Contribution in probability points (percentage points)."
    )
    contribution_log_odds: float = Field(description="Contribution in log-odds (exact TreeSHAP).")
    sentence: str = Field(description="The reason as a person reads it.")


class ReasonGroup(BaseModel):
    """Reasons of one business concept with their summed contribution."""

    group: str
    contribution_points: float = Field(description="Sum of the group's reasons, points.")
    contribution_log_odds: float = Field(description="Sum of the group's reasons, log-odds.")
    reasons: list[Reason]


class CategoryScore(BaseModel):
    """A cross-sell category the customer has not bought yet, with its score."""

    category: str
    rank: int = Field(ge=1, description="1 = the most likely next category.")
    probability: float = Field(ge=0, le=1)


class TaskScore(BaseModel):
    """A customer's score for one task.

    For a ranked task (cross-sell) the probability, decile, band and reasons are those of the top
    category; they are null when the customer has bought every category already.
    """

    task: str = Field(description="A loaded task (see GET /v1/models).")
    probability: float | None = Field(ge=0, le=1, description="Calibrated probability.")
    decile: int | None = Field(
        ge=1, le=10, description="1 = the top tenth of the snapshot's scores, as batch scoring."
    )
    band: Band | None
    log_odds: float | None = Field(description="The model's margin (log-odds).")
    base_log_odds: float | None = Field(
        description="Expected margin (TreeSHAP bias); base + sum of all contributions = margin."
    )
    model_name: str
    model_version: str
    snapshot_date: date | None = Field(description="As-of day of the features; null if live.")
    reasons: list[Reason] = Field(default_factory=list)
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

    customer_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    tasks: list[str] | None = Field(default=None, description="Default: every loaded task.")
    explain: int = Field(default=5, ge=0, le=MAX_REASONS, description="Reasons per task.")
    group: bool = Field(default=False, description="Also group the reasons by business concept.")


class BatchScoreResponse(BaseModel):
    """Per-id results, in request order; unknown ids are reported, not failed."""

    results: list[CustomerResult]
    unknown: int = Field(description="How many ids are not in the snapshot.")


class EventIn(_Strict):
    """One interaction, as in the events contract (``customer_id`` comes from the request)."""

    ts: datetime
    event_type: str
    channel: str | None = None
    amount: float | None = None
    margin: float | None = None
    quantity: float | None = None
    category: str | None = None
    score: float | None = None
    ref_id: str | None = None


class ScoreRequest(_Strict):
    """One customer's features, or raw events, scored through the same pipeline."""

    customer_id: str = Field(
        default="adhoc", min_length=1, description="Used only to key the result."
    )
    features: dict[str, float | None] | None = Field(
        default=None, description="Snapshot columns by name; missing ones count as missing values."
    )
    events: list[EventIn] | None = Field(default=None, min_length=1, max_length=100_000)
    as_of: date | None = Field(
        default=None, description="For events: the snapshot day (default: the last event's day)."
    )
    tasks: list[str] | None = Field(default=None, description="Default: every loaded task.")
    explain: int = Field(default=5, ge=0, le=MAX_REASONS)
    group: bool = False

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
    aliases: list[str]
    feature_set_version: str
    features: int
    categories: list[str]
    metrics: dict[str, dict[str, float | None]] = Field(
        description="Held-out metrics recorded at training, by model then metric "
        '(e.g. {"xgboost": {"roc_auc": 0.8}, "rule": {"roc_auc": 0.7}}).'
    )
    grade: str | None


class ModelsResponse(BaseModel):
    """Everything that is loaded."""

    models: list[ModelInfo]
    snapshot: SnapshotInfo
    loaded_at: datetime


class ReloadResponse(BaseModel):
    """Outcome of a successful reload."""

    reloaded: Literal[True] = True
    models: list[ModelInfo]
    snapshot: SnapshotInfo


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: models and snapshot loaded."""

    ready: bool
    detail: str | None = Field(default=None, description="Why not ready (last load error).")


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
