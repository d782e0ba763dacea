"""``POST /v1/targeting``: a budgeted campaign plan, the same inputs as ``guanxi target`` in JSON.

The body carries the budget, the offers file as JSON (the YAML document's content) and optionally
the day of the value table; the plan comes from the store exactly as on the command line
(:func:`models.planning.plan_from_store`). The answer has the plan's totals, its summaries per
segment and per offer, the next best use of the remaining budget (``next_reason``: why it buys
nothing), the comparison with an even spend and with churn score alone, and the ``limit``
customers with the most expected value.

Planning reads every customer's value, so it needs the ``reviewer`` role. Each customer returned
is written to the audit log (hashed id, ``targeting:<offer>``, the value table's day, expected
value) and counted in ``/metrics`` (``guanxi_plan_rows_served_total``). A bad offers file is a
422 naming the offer and field, and so is a key given twice in one object of the body (JSON
readers keep the last; the offers file refuses it too); a day without a value table a 404.

The uplift models are loaded once per registered version: each request asks the registry which
version an offer's alias points at (one light call) and takes the loaded model from the app's
:class:`UpliftCache` when that version was loaded before; ``POST /v1/admin/reload`` empties it.
"""

from __future__ import annotations

import logging
import threading
from datetime import date
from typing import Annotated, Any, Final, Literal

from cachetools import LRUCache
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.store import TamperedTableError, UnsignedTableError
from models.customer_rows import RepeatedCustomersError
from models.offers import OffersFileError, offers_location, parse_offers
from models.planning import NoValuesError, plan_from_store
from models.registry import (
    CHALLENGER,
    LoadedUplift,
    configure_tracking,
    load_uplift_version,
    uplift_version,
)
from models.targeting import BUDGET_TOO_LARGE, MAX_BUDGET, NO_BUDGET, in_cents
from serving.deps import Audit, SettingsDep, require_role
from serving.metrics import Metrics
from serving.routes import (
    EXAMPLE_AS_OF,
    EXAMPLE_TASK,
    MODEL_FREE_ERRORS,
    JSONRoute,
    KeysGivenOnce,
    Location,
    error_answer,
    request_example,
    success_example,
)
from serving.schemas import Bool, Int, Number
from serving.settings import Role

__all__ = [
    "UPLIFT_CACHE_SIZE",
    "ComparisonRow",
    "PlanRow",
    "SummaryRow",
    "TargetingRequest",
    "TargetingResponse",
    "UpliftCache",
    "targeting_router",
]

logger = logging.getLogger(__name__)

UPLIFT_CACHE_SIZE: Final = 32
"""Loaded uplift model versions the server keeps (least recently used dropped first)."""


class UpliftCache:
    """Loaded uplift models by registered (name, version), bounded and shared by requests.

    Parameters
    ----------
    size : int, default :data:`UPLIFT_CACHE_SIZE`
        Versions kept; the least recently used is dropped beyond it.

    Notes
    -----
    A model is loaded under the cache's lock, so requests arriving together for a version not
    loaded yet load it once; the registry lookup of the alias happens outside it.
    """

    def __init__(self, size: int = UPLIFT_CACHE_SIZE) -> None:
        self._models: LRUCache[tuple[str, str], LoadedUplift] = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def load(self, offer: str, alias: str = CHALLENGER) -> LoadedUplift:
        """Return the offer's uplift model ``alias`` points at, loading it on first use.

        Parameters
        ----------
        offer : str
            The offer.
        alias : str, default :data:`~models.registry.CHALLENGER`
            The alias to follow (looked up in the registry on every call).

        Returns
        -------
        models.registry.LoadedUplift
            The loaded version (:func:`models.registry.load_uplift_version`).

        Raises
        ------
        models.registry.ModelNotFoundError
            If the offer has no uplift model with the alias.
        models.registry.ModelIntegrityError
            If the boosters' digest is not the one pinned at registration (nothing is kept).
        """
        mv = uplift_version(offer, alias)
        key = (str(mv.name), str(mv.version))
        with self._lock:
            loaded = self._models.get(key)
            if loaded is None:
                loaded = self._models[key] = load_uplift_version(mv)
            return loaded

    def clear(self) -> None:
        """Forget every loaded model (the admin reload)."""
        with self._lock:
            self._models.clear()

    def __len__(self) -> int:
        """Versions held."""
        return len(self._models)


ReviewerKey = Annotated[Role, Depends(require_role(Role.reviewer))]


def _offer_where(path: Location, body: Any) -> str:
    """Say which offer (and field) holds an object of the body, as the offers file's errors do.

    The offers file refuses a key given twice in one mapping; the same offers sent as JSON kept
    the last without a word, so the plan changed unseen (:class:`~serving.routes.KeysGivenOnce`
    refuses it, naming the offer).
    """
    if path[:1] != ("offers",):
        return ""
    offers = body.get("offers") if isinstance(body, dict) else None
    return offers_location(path[1:], offers) if path[1:] else "the offers"


targeting_router = APIRouter(
    prefix="/v1",
    route_class=JSONRoute,  # the body's strings are Unicode text (a 422, not a 500)
    responses={
        **MODEL_FREE_ERRORS,  # a plan needs no loaded model: its 503 is the stopping server's
        404: error_answer(
            "No value table for the day.",
            {
                "detail": "the store has no value table as of 2025-12-31 (it holds: 2025-11-30): "
                "run `guanxi value --events PATH --as-of 2025-12-31 --out PATH` first (events "
                "that reach back to that day: one before their first event has no customer to "
                "value), or plan a day it holds (--as-of 2025-11-30)"
            },
        ),
        409: error_answer(
            "The value table, or a recorded campaign, is not the one signed with the server's "
            "GUANXI_STORE_KEY, or a table the plan reads (the value table, the snapshot, the "
            "cross-sell scores) lists a customer on more than one row (the detail names it).",
            {
                "detail": "the value table as of 2025-12-31 does not match its signed manifest; "
                "the reason is in the server log (request id 3f2b8c0e9d6a4f1b8e7c5a2d0b9f4e6c)"
            },
        ),
    },
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetingRequest(_Strict):
    """What to plan with."""

    budget: Number = Field(
        allow_inf_nan=False,
        json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_BUDGET},
        description="What the campaign may spend; above 0, at most 1e13, as guanxi target "
        "--budget.",
    )
    offers: dict[str, Any] = Field(
        description="The offers file as JSON: the content of docs/examples/offers.yaml."
    )
    as_of: date | None = Field(
        default=None, description="Day of the value table; the latest in the store by default."
    )
    method: Literal["auto", "exact", "lagrangian"] = "auto"
    uplift: Bool = Field(
        default=True,
        description="Use the uplift models registered by guanxi campaign uplift where they beat "
        "the churn score on the Qini.",
    )
    limit: Int = Field(
        default=100, ge=0, le=10_000, description="Customers returned, most valuable first."
    )

    @field_validator("budget")
    @classmethod
    def _plannable(cls, budget: float) -> float:
        """Refuse a budget no plan can take in the CLI's words: 0 or less, or above the most.

        0 or less contacts nobody; above :data:`models.targeting.MAX_BUDGET` amounts lose their
        cents. It was taken (``ge=0``), and a budget of 0 answered an empty plan that ``guanxi
        target`` refuses.
        """
        if budget <= 0:
            raise ValueError(f"{budget:g} {NO_BUDGET}")
        if budget > MAX_BUDGET:  # as guanxi target refuses it: amounts beyond lose their cents
            raise ValueError(f"{budget:g} {BUDGET_TOO_LARGE}")
        return budget


class PlanRow(_Strict):
    """One contact of the plan (the columns of plan.csv)."""

    customer_id: str
    offer: str
    channel: str
    cost: float
    expected_value: float
    segment: str
    value_tier: str


class SummaryRow(_Strict):
    """Contacts, investment, expected return and ROI of one segment or offer."""

    segment: str | None = None
    offer: str | None = None
    channel: str | None = None
    contacts: int
    investment: float
    expected_return: float
    expected_value: float
    return_per_unit: float | None
    roi: float | None


class ComparisonRow(_Strict):
    """One row of the segment ROI table of an allocation."""

    allocation: Literal["optimiser", "even", "churn_score"]
    segment: str
    customers: int
    investment: float
    expected_return: float
    return_per_unit: float | None


class TargetingResponse(_Strict):
    """The plan."""

    as_of: date
    budget: float
    customers: int = Field(description="Customers contacted.")
    investment: float
    expected_value: float = Field(description="Expected value after costs.")
    bound: float = Field(description="Upper bound on any plan's expected value (LP).")
    gap: float = Field(description="Optimality gap against the bound.")
    method: str
    reason: str | None = Field(description="Why the plan is empty; null when it contacts anyone.")
    rows: list[PlanRow]
    by_segment: list[SummaryRow]
    by_offer: list[SummaryRow]
    next_best_by_segment: list[SummaryRow]
    next_best_by_offer: list[SummaryRow]
    next_reason: str | None = Field(
        description="Why the next best use of the remaining budget buys nothing (its lists are "
        "empty); null when it buys something."
    )
    next_limits: list[str] = Field(
        description="The channel capacities and contact caps the next best use goes past (its "
        "contacts with the plan's), e.g. 'the campaign's contact cap (10)': it lifts them (what "
        "more capacity would be worth), so it is not what the plan can still buy; empty when it "
        "goes past none."
    )
    comparison: list[ComparisonRow]
    notes: list[str]


def _summary(segment: str | None, offer: str | None, channel: str | None, cost: float) -> Any:
    """One contact's summary row of the example plan (a return of 25 per contact)."""
    return {
        "segment": segment,
        "offer": offer,
        "channel": channel,
        "contacts": 1,
        "investment": cost,
        "expected_return": 25.0,
        "expected_value": 25.0 - cost,
        "return_per_unit": 25.0 / cost,
        "roi": 25.0 / cost - 1,
    }


# the document's example: a budget of 15 buys a call and an e-mail of docs/examples/offers.yaml
_PLAN: Final = {
    "as_of": EXAMPLE_AS_OF,
    "budget": 15.0,
    "customers": 2,
    "investment": 12.6,
    "expected_value": 37.4,
    "bound": 37.9,
    "gap": 0.0132,
    "method": "exact",
    "reason": None,
    "rows": [
        {
            "customer_id": "C0417",
            "offer": "retention_call",
            "channel": "phone",
            "cost": 12.0,
            "expected_value": 13.0,
            "segment": "cant_lose",
            "value_tier": "top_1pct",
        },
        {
            "customer_id": "C0002",
            "offer": "retention_email",
            "channel": "email",
            "cost": 0.6,
            "expected_value": 24.4,
            "segment": "at_risk",
            "value_tier": "top_20pct",
        },
    ],
    "by_segment": [
        _summary("at_risk", None, None, 0.6),
        _summary("cant_lose", None, None, 12.0),
    ],
    "by_offer": [
        _summary(None, "retention_email", "email", 0.6),
        _summary(None, "retention_call", "phone", 12.0),
    ],
    "next_best_by_segment": [_summary("about_to_sleep", None, None, 0.6)],
    "next_best_by_offer": [_summary(None, "retention_email", "email", 0.6)],
    "next_reason": None,
    "next_limits": [],
    "comparison": [
        {
            "allocation": allocation,
            "segment": "total",
            "customers": customers,
            "investment": investment,
            "expected_return": expected,
            "return_per_unit": expected / investment,
        }
        for allocation, customers, investment, expected in [
            ("optimiser", 2, 12.6, 50.0),
            ("even", 4, 14.4, 21.3),
            ("churn_score", 3, 13.2, 30.8),
        ]
    ],
    "notes": [],
}


@targeting_router.post(
    "/targeting",
    response_model=TargetingResponse,
    responses=success_example(_PLAN),
    openapi_extra=request_example(
        two_offers={
            "budget": 15.0,
            "offers": {  # two offers of docs/examples/offers.yaml, as JSON
                "channels": {"phone": {"capacity": 1500}, "email": {}},
                "offers": [
                    {
                        "name": "retention_email",
                        "kind": "retention",
                        "channel": "email",
                        "cost": 0.6,
                        "response": {"default": 0.04, "segments": {"at_risk": 0.06}},
                        "eligibility": {"population": EXAMPLE_TASK},
                    },
                    {
                        "name": "retention_call",
                        "kind": "retention",
                        "channel": "phone",
                        "cost": 12.0,
                        "max_contacts": 1200,
                        "response": {"default": 0.15},
                        "eligibility": {
                            "population": EXAMPLE_TASK,
                            "min_churn_probability": 0.3,
                        },
                    },
                ],
            },
            "as_of": EXAMPLE_AS_OF,
            "limit": 100,
        }
    ),
    summary="Plan a budgeted campaign",
)
def targeting(
    role: ReviewerKey,
    _keys: Annotated[None, Depends(KeysGivenOnce(_offer_where))],  # after the key's check
    request: Request,
    body: TargetingRequest,
    settings: SettingsDep,
    audit: Audit,
) -> TargetingResponse:
    """Plan who gets which offer through which channel within the budget, and its return."""
    try:
        offers = parse_offers(body.offers, "body.offers")
    except OffersFileError as exc:
        raise RequestValidationError(
            [
                {"loc": ("body", "offers"), "msg": problem, "type": "value_error"}
                for problem in exc.problems
            ]
        ) from None
    configure_tracking(settings.home)  # registered uplift and cross-sell models
    try:
        run = plan_from_store(
            settings.store(),
            offers,
            body.budget,
            body.as_of,
            body.method,
            body.uplift,
            request.app.state.uplift_cache.load,
        )
    except NoValuesError as exc:  # its reason names no folder of the server; the log does
        logger.info("request %s: %s", request.state.request_id, exc)
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.reason) from None
    except (UnsignedTableError, TamperedTableError) as exc:  # checked against its manifest
        logger.warning("request %s: table refused: %s", request.state.request_id, exc)
        # a table kept without the key has no manifest to match: say so, not "does not match";
        # the table by name, never a path of the server (the log has it)
        refused = (
            "is not signed with this server's GUANXI_STORE_KEY: keep it again with the key set"
            if isinstance(exc, UnsignedTableError)
            else "does not match its signed manifest"
        )
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{exc.what or 'the value table'} {refused}; the reason is in the server log "
            f"(request id {request.state.request_id})",
        ) from None
    except RepeatedCustomersError as exc:  # the store's table, not the request: names no path
        logger.warning("request %s: table refused: %s", request.state.request_id, exc)
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    plan = run.plan
    top = plan.rows.head(body.limit)
    as_of = run.as_of.isoformat()
    audit.record(
        request.state.request_id,
        role.name,
        [
            (r["customer_id"], f"targeting:{r['offer']}", as_of, r["expected_value"])
            for r in top.iter_rows(named=True)
        ],
        key_fingerprint=request.state.key_fingerprint,
    )
    metrics: Metrics = request.app.state.metrics  # each audit line counted in /metrics
    metrics.observe_plan_rows(as_of, top.height)
    # money in cents, as guanxi target --out writes it ("investment": 9.899999999999999 was
    # the sum's float error); the budget as sent, the ratios and gap as computed
    return TargetingResponse(
        as_of=run.as_of,
        budget=plan.budget,
        customers=plan.rows.height,
        investment=round(plan.investment, 2),
        expected_value=round(plan.expected_value, 2),
        bound=round(plan.bound, 2),
        gap=plan.gap,
        method=plan.method,
        reason=plan.reason,
        rows=[PlanRow(**r) for r in in_cents(top).to_dicts()],
        by_segment=[SummaryRow(**r) for r in in_cents(plan.allocation.by_segment).to_dicts()],
        by_offer=[SummaryRow(**r) for r in in_cents(plan.allocation.by_offer).to_dicts()],
        next_best_by_segment=[
            SummaryRow(**r) for r in in_cents(plan.next_best.by_segment).to_dicts()
        ],
        next_best_by_offer=[SummaryRow(**r) for r in in_cents(plan.next_best.by_offer).to_dicts()],
        next_reason=plan.next_reason,
        next_limits=list(plan.next_limits),
        comparison=[ComparisonRow(**r) for r in in_cents(run.comparison).to_dicts()],
        notes=list(run.notes),
    )
