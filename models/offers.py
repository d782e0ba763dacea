"""The offers file: what the CRM team can send, through which channel, at what cost.

An offers file is YAML with two top-level keys (an example lives at
``docs/examples/offers.yaml``)::

    channels:                      # optional: contacts each channel can make in the campaign
      phone: {capacity: 1500}
    max_contacts: 20000            # optional: contacts in the whole campaign
    offers:
      - name: retention_call
        kind: retention            # retention | win_back | cross_sell | service_recovery
        channel: phone             # one of features.contracts.CHANNELS
        cost: 12.0                 # per contact, in the money unit of the events
        max_contacts: 800          # optional contact cap of this offer
        response:                  # expected response rate; see below
          default: 0.15
          segments: {cant_lose: 0.22}     # RFM segments (rfm_segment): champions, at_risk, ...
          value_tiers: {top_1pct: 0.25}   # top_1pct | top_5pct | top_20pct | rest
        eligibility:
          population: churn        # any | churn | lapsed
          unresolved_complaint: false
          min_churn_probability: 0.3
          segments: [at_risk, cant_lose, about_to_sleep]

Response rates
--------------
What a rate means depends on the offer's kind (:mod:`models.targeting` turns it into an expected
value): for ``retention`` and ``service_recovery`` it is the share of would-be churners the contact
keeps; for ``win_back`` the share of lapsed customers it brings back; for ``cross_sell`` a
multiplier on the cross-sell propensity (default 1.0). A customer's rate is the measured rate of
their segment when a campaign has been recorded (:func:`with_measured_rates`), else the file's rate
for their segment, else for their value tier, else ``default``. Rates lie in [-1, 1]: a measured
incremental response can be negative (contact pushes some customers away), and such an offer is
then never worth sending to that segment.

Names
-----
The segments an offer names (``response.segments``, ``eligibility.segments``) must be RFM segments
(:data:`SEGMENTS`) and its value tiers value tiers (:data:`TIER_NAMES`): a misspelt name would match
no customer, so its rate or condition would silently never apply. Customers without orders have no
segment; only ``default`` and the value tiers reach them. Measured rates (``response.measured``)
come from recorded campaign outcomes, whose ``segment`` names ``guanxi campaign record`` checks
in the same words (:func:`unknown_names`, :func:`models.campaigns.validate_outcomes`), and are
not checked again, nor are the names of the offers a stored plan was made with
(``parse_offers(..., stored=True)``). Nor is a stored plan's cross-sell ``expected_margin``,
which a file must give as 0 or more: a conversion that loses money would make every contact
worth less than its cost.

Every problem is reported with the file, the offer and the field (:class:`OffersFileError`); a
valid file loads into :class:`OffersFile`, plain pydantic models the optimiser reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from features.contracts import CHANNELS, closest, counted
from features.rfm import RFM_SEGMENTS
from models.clv.equity import VALUE_TIERS

__all__ = [
    "OFFER_KINDS",
    "SEGMENTS",
    "TIER_NAMES",
    "Channel",
    "Eligibility",
    "InputProblemsError",
    "Offer",
    "OfferKind",
    "OffersFile",
    "OffersFileError",
    "Population",
    "Response",
    "load_offers",
    "not_a_number",
    "offers_location",
    "parse_offers",
    "unknown_names",
    "with_measured_rates",
]

OfferKind = Literal["retention", "win_back", "cross_sell", "service_recovery"]
"""What an offer is for; it decides how the expected value is computed."""
OFFER_KINDS: Final[tuple[str, ...]] = ("retention", "win_back", "cross_sell", "service_recovery")

Population = Literal["any", "churn", "lapsed"]
"""``churn``: the churn model's population (an order in the last 365 days); ``lapsed``: customers
with orders, none in the last 365 days; ``any``: every customer."""

Rate = Annotated[float, Field(ge=-1.0, le=1.0)]

TIER_NAMES: Final[tuple[str, ...]] = tuple(name for name, _ in VALUE_TIERS)
"""The value tiers an offer may name: the ``value_tier`` values of the value table."""


SEGMENTS: Final[tuple[str, ...]] = tuple(name for name, _, _ in RFM_SEGMENTS)
"""The RFM segments an offer may name: the ``rfm_segment`` values of the value table."""


def _refuse_unknown(
    names: Iterable[str] | None, info: ValidationInfo, *, what: str, known: tuple[str, ...]
) -> None:
    """Refuse a name the value table never has: its rate or condition would never apply.

    The offers of a stored plan (``parse_offers(..., stored=True)``) are not checked again.
    """
    if names is None or _stored(info):
        return
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(unknown_names(unknown, what=what, known=known))


def _stored(info: ValidationInfo) -> bool:
    """Whether the offers validated are a stored plan's (``parse_offers(..., stored=True)``)."""
    return isinstance(info.context, Mapping) and bool(info.context.get("stored"))


def unknown_names(
    names: Sequence[str],
    *,
    what: str,
    known: tuple[str, ...],
    where: Mapping[str, str] | None = None,
    more: int = 0,
) -> str:
    """Say that no name the value table has is one of ``names``, with the nearest of each.

    The offers file's segment and value tier names and the outcomes' ``segment`` column
    (:func:`models.campaigns.validate_outcomes`) are refused in these words.

    Parameters
    ----------
    names : sequence of str
        The unknown names, in the order to list them.
    what : str
        What they should be, e.g. ``"RFM segment"``.
    known : tuple of str
        The names the value table has.
    where : mapping of str to str, optional
        Where each name was found (e.g. ``"rows 1, 2"``), said beside it.
    more : int, default 0
        Unknown names not listed, counted after those listed.

    Returns
    -------
    str
        E.g. ``no RFM segment is called 'at_rsk' (row 7; is it 'at_risk'?); the value table's
        RFM segments are champions, ...``.
    """
    said = []
    for name in names:
        found = (where or {}).get(name)
        near = closest(name, known)
        inside = "; ".join(part for part in (found, near and f"is it {near!r}?") if part)
        said.append(f"{name!r} ({inside})" if inside else repr(name))
    listed = ", ".join(said) + (f" and {counted(more, 'more names')}" if more else "")
    return f"no {what} is called {listed}; the value table's {what}s are {', '.join(known)}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Response(_Strict):
    """Expected response rates of an offer: a default, overridden per segment or value tier.

    Parameters
    ----------
    default : float
        Rate for customers whose segment and value tier have no rate of their own.
    segments : dict of str to float
        Rate per RFM segment (one of :data:`SEGMENTS`).
    value_tiers : dict of str to float
        Rate per value tier (one of :data:`TIER_NAMES`).
    measured : dict of str to float
        Rate per segment measured in a recorded campaign; wins over everything else.
    """

    default: Rate
    segments: dict[str, Rate] = Field(default_factory=dict)
    value_tiers: dict[str, Rate] = Field(default_factory=dict)
    measured: dict[str, Rate] = Field(default_factory=dict)

    @field_validator("segments")
    @classmethod
    def _segments(cls, segments: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        _refuse_unknown(segments, info, what="RFM segment", known=SEGMENTS)
        return segments

    @field_validator("value_tiers")
    @classmethod
    def _tiers(cls, tiers: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        _refuse_unknown(tiers, info, what="value tier", known=TIER_NAMES)
        return tiers

    def rate(self, segment: str | None, value_tier: str | None) -> float:
        """Return the rate for one customer (measured, segment, value tier, default).

        Parameters
        ----------
        segment : str or None
            The customer's segment.
        value_tier : str or None
            The customer's value tier.

        Returns
        -------
        float
            The rate.
        """
        if segment is not None and segment in self.measured:
            return self.measured[segment]
        if segment is not None and segment in self.segments:
            return self.segments[segment]
        if value_tier is not None and value_tier in self.value_tiers:
            return self.value_tiers[value_tier]
        return self.default


class Eligibility(_Strict):
    """Who may receive an offer; a customer must pass every condition given.

    Parameters
    ----------
    population : {"any", "churn", "lapsed"}
        ``churn``: customers in the churn population; ``lapsed``: lapsed customers.
    unresolved_complaint : bool
        Only customers with at least one unresolved complaint.
    min_churn_probability : float, optional
        Only customers whose churn probability is at least this.
    segments : list of str, optional
        Only customers in these RFM segments (of :data:`SEGMENTS`).
    value_tiers : list of str, optional
        Only customers in these value tiers (of :data:`TIER_NAMES`).
    """

    population: Population = "any"
    unresolved_complaint: bool = False
    min_churn_probability: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    segments: list[str] | None = None
    value_tiers: list[str] | None = None

    @field_validator("segments")
    @classmethod
    def _segments(cls, segments: list[str] | None, info: ValidationInfo) -> list[str] | None:
        _refuse_unknown(segments, info, what="RFM segment", known=SEGMENTS)
        return segments

    @field_validator("value_tiers")
    @classmethod
    def _tiers(cls, tiers: list[str] | None, info: ValidationInfo) -> list[str] | None:
        _refuse_unknown(tiers, info, what="value tier", known=TIER_NAMES)
        return tiers


class Offer(_Strict):
    """One offer of the file.

    Parameters
    ----------
    name : str
        Unique name (letters, digits, ``_``, ``-``, ``.``).
    kind : {"retention", "win_back", "cross_sell", "service_recovery"}
        What the offer is for.
    channel : str
        One of :data:`features.contracts.CHANNELS`.
    cost : float
        Cost per contact (>= 0).
    response : Response
        Expected response rates; for ``cross_sell`` optional (a multiplier on the propensity,
        default 1.0).
    eligibility : Eligibility
        Who may receive it.
    max_contacts : int, optional
        At most this many customers receive the offer.
    category : str, optional
        The product category a ``cross_sell`` offer sells (required for that kind only).
    expected_margin : float, optional
        Expected margin of a ``cross_sell`` conversion, 0 or more (required for that kind only).
    description : str
        Free text for people.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: OfferKind
    channel: str
    cost: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    response: Response | None = None
    eligibility: Eligibility = Field(default_factory=Eligibility)
    max_contacts: Annotated[int, Field(ge=0)] | None = None
    category: str | None = None
    expected_margin: Annotated[float, Field(allow_inf_nan=False)] | None = None
    description: str = ""

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}; expected one of {', '.join(CHANNELS)}")
        return value

    @field_validator("expected_margin")
    @classmethod
    def _margin(cls, value: float | None, info: ValidationInfo) -> float | None:
        # a conversion that loses money made every contact worth less than its cost (times a
        # negative measured rate, worth more): the offer was taken and never planned, or planned
        # for a loss; a stored plan's offers are not checked again
        if value is not None and value < 0 and not _stored(info):
            raise ValueError(
                f"{value:g} is negative: the margin one conversion earns is 0 or more "
                "(the cost of a contact is the offer's cost)"
            )
        return value

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        if self.kind != "cross_sell" and self.response is None:
            raise ValueError(f"response: required for a {self.kind} offer (at least a default)")
        if self.kind == "cross_sell":
            if self.category is None:
                raise ValueError("category: required for a cross_sell offer")
            if self.expected_margin is None:
                raise ValueError("expected_margin: required for a cross_sell offer")
        else:
            for name in ("category", "expected_margin"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only a cross_sell offer has one")
        return self

    @property
    def rates(self) -> Response:
        """The offer's response rates (a cross-sell offer without any: default 1.0)."""
        return self.response if self.response is not None else Response(default=1.0)


class Channel(_Strict):
    """Limits of one channel in a campaign.

    Parameters
    ----------
    capacity : int, optional
        Contacts the channel can make (call-centre hours turned into calls, for instance).
    """

    capacity: Annotated[int, Field(ge=0)] | None = None


class OffersFile(_Strict):
    """A validated offers file.

    Parameters
    ----------
    offers : list of Offer
        At least one offer; names are unique.
    channels : dict of str to Channel
        Limits per channel (keys from :data:`features.contracts.CHANNELS`).
    max_contacts : int, optional
        Contacts in the whole campaign.
    """

    offers: Annotated[list[Offer], Field(min_length=1)]
    channels: dict[str, Channel] = Field(default_factory=dict)
    max_contacts: Annotated[int, Field(ge=0)] | None = None

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: dict[str, Channel]) -> dict[str, Channel]:
        unknown = sorted(set(value) - set(CHANNELS))
        if unknown:
            raise ValueError(
                f"unknown channel {unknown[0]!r}; expected one of {', '.join(CHANNELS)}"
            )
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: set[str] = set()
        for offer in self.offers:
            if offer.name in seen:
                raise ValueError(f"offer {offer.name!r} is listed twice; names must be unique")
            seen.add(offer.name)
        return self

    def offer(self, name: str) -> Offer:
        """Return the offer called ``name``.

        Parameters
        ----------
        name : str
            Offer name.

        Returns
        -------
        Offer
            The offer.

        Raises
        ------
        KeyError
            If there is no such offer.
        """
        for offer in self.offers:
            if offer.name == name:
                return offer
        raise KeyError(f"no offer named {name!r}")


class InputProblemsError(ValueError):
    """Input that cannot be used, with every problem found (``source: problem; problem``).

    Parameters
    ----------
    source : str
        Where the input came from: a file, or a placeholder such as ``"<offers>"``.
    problems : list of str
        One line per problem.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class OffersFileError(InputProblemsError):
    """An offers file that cannot be used; the message names the file, offer and field.

    Parameters
    ----------
    source : str
        The file (or ``"<offers>"`` for data not read from a file).
    problems : list of str
        One line per problem.
    """


def offers_location(loc: tuple[int | str, ...], data: Any) -> str:
    """Say where a location of an offers document is, in 'offer 'x', field a.b' wording.

    Parameters
    ----------
    loc : tuple of (int or str)
        The location in the document (a pydantic error's ``loc``): ``("offers", 1, "cost")``.
    data : object
        The document, whose offer at ``loc[1]`` gives its name when it has one.

    Returns
    -------
    str
        ``offer 'x', field a.b``, ``offer #2`` for an offer without a name, ``field a.b``
        outside the offers list, ``file`` for the whole document.
    """
    if len(loc) >= 2 and loc[0] == "offers" and isinstance(loc[1], int):
        name = None
        offers = data.get("offers") if isinstance(data, Mapping) else None
        entry = offers[loc[1]] if isinstance(offers, list) and loc[1] < len(offers) else None
        if isinstance(entry, Mapping):
            name = entry.get("name")
        who = f"offer {name!r}" if name is not None else f"offer #{loc[1] + 1}"
        rest = ".".join(str(part) for part in loc[2:])
        return f"{who}, field {rest}" if rest else who
    return "field " + ".".join(str(part) for part in loc) if loc else "file"


def parse_offers(data: Any, source: str = "<offers>", *, stored: bool = False) -> OffersFile:
    """Validate parsed YAML (or any mapping) as an offers file.

    Parameters
    ----------
    data : object
        The parsed document.
    source : str, default "<offers>"
        Where it came from, for messages.
    stored : bool, default False
        The offers a stored plan was made with (:class:`features.store.PlanInfo`): their segment
        and value tier names were checked when the plan was made, by the rules of that day, and
        are not checked again, so that a plan kept before a name check was added (its names read
        nobody's rates, but its offers' names, kinds and costs are right) stays readable; nor
        is a cross-sell offer's ``expected_margin`` (0 or more in a file), for the same reason.

    Returns
    -------
    OffersFile
        The validated offers.

    Raises
    ------
    OffersFileError
        Listing every problem with the offer and field it concerns.
    """
    if not isinstance(data, Mapping):
        raise OffersFileError(source, ["expected a mapping with an 'offers' list at the top"])
    try:
        return OffersFile.model_validate(data, context={"stored": stored})
    except ValidationError as exc:
        problems = [
            f"{offers_location(tuple(e['loc']), data)}: {_problem(e)}" for e in exc.errors()
        ]
        raise OffersFileError(source, problems) from None


def _problem(error: ErrorDetails) -> str:
    """Say one validation error in the offers file's words (pydantic's, where they serve)."""
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        return _unknown_field(loc)
    if error["type"] == "less_than_equal" and error.get("ctx", {}).get("le") == 1:
        # a rate or a churn probability of 15 (for 15%) was said as "Input should be less than
        # or equal to 1"
        return (
            f"{error['input']} is above 1: rates and probabilities are shares, not percentages "
            "(0.15 for 15%)"
        )
    if error["type"] == "string_pattern_mismatch" and loc[-1:] == ("name",):
        # said as "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]*$'"
        return (
            "cannot name an offer: use letters, digits, '.', '_' or '-', starting with a letter "
            "or digit (no spaces)"
        )
    if error["type"] in ("float_parsing", "int_parsing") and isinstance(error["input"], str):
        # "12,50", "1 000" or "12 EUR" was said as "Input should be a valid number, unable to
        # parse string as a number"
        return not_a_number(error["input"], whole=error["type"] == "int_parsing")
    if error["type"] == "model_type":  # "Input should be a valid dictionary or instance of X"
        model, what = _model_at(loc)
        return (
            f"{error['input']!r} is not a mapping: {what} takes 'field: value' lines of its "
            f"fields ({', '.join(model.model_fields)})"
        )
    return error["msg"].removeprefix("Value error, ")


def not_a_number(text: str, *, whole: bool = False) -> str:
    """Say how to write a number that ``text`` (``"12,50"``, ``"1,000"``, ``"12 EUR"``) is not.

    Parameters
    ----------
    text : str
        What was written.
    whole : bool, default False
        A whole number was wanted.

    Returns
    -------
    str
        E.g. ``"'1,000' is not a number: a point for decimals, no thousands separator or
        currency (12.5)"``: pydantic said "Input should be a valid number, unable to parse
        string as a number", which left the separator or currency to be found.
    """
    if whole:
        how = "a whole number: digits alone, no thousands separator (1500)"
    else:
        how = "a number: a point for decimals, no thousands separator or currency (12.5)"
    return f"{text!r} is not {how}"


def _model_at(loc: tuple[int | str, ...]) -> tuple[type[BaseModel], str]:
    """Return the model that stands at ``loc`` of an offers document, and what to call it."""
    path = tuple(part for part in loc if isinstance(part, str))
    if path[:1] == ("channels",):
        return Channel, "a channel"
    return _MODELS_AT.get(path, (OffersFile, "the file"))


def _unknown_field(loc: tuple[int | str, ...]) -> str:
    """Say that a key is no field where it stands, with the nearest field and all of them.

    Pydantic said "Extra inputs are not permitted", so a misspelt optional key (``max_contact``,
    ``segmnets``) left the reader to find the field meant.
    """
    model, what = _model_at(loc[:-1])
    fields = tuple(model.model_fields)
    near = closest(str(loc[-1]), fields)
    guess = f" (is it {near!r}?)" if near else ""
    return f"not a field of {what}{guess}, which has {', '.join(fields)}"


_NOT_YAML: Final = {
    ".parquet": "a Parquet file",
    ".csv": "a CSV file",
    ".xlsx": "an Excel workbook",
    ".xls": "an Excel workbook",
    ".xlsm": "an Excel workbook",
    ".ods": "a spreadsheet",
}
"""Files an offers file is not, by suffix (JSON is YAML, and is read)."""

_MODELS_AT: Final[dict[tuple[str, ...], tuple[type[BaseModel], str]]] = {
    (): (OffersFile, "the file"),
    ("offers",): (Offer, "an offer"),
    ("offers", "response"): (Response, "response"),
    ("offers", "eligibility"): (Eligibility, "eligibility"),
}
"""The model a key stands in, by the names on its way there (list indexes left out)."""


def load_offers(path: str | Path) -> OffersFile:
    """Read and validate an offers file (YAML).

    Parameters
    ----------
    path : str or pathlib.Path
        The file.

    Returns
    -------
    OffersFile
        The validated offers.

    Raises
    ------
    OffersFileError
        If the file is missing, is not YAML, or does not describe valid offers.
    """
    path = Path(path)
    kind = _NOT_YAML.get(path.suffix.lower())
    if kind is not None:  # read as YAML, a Parquet file was said to be Latin-1 text
        raise OffersFileError(
            str(path),
            [
                f"cannot read the file: {kind}, not an offers file (YAML, as "
                "docs/examples/offers.yaml)"
            ],
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise OffersFileError(
            str(path), [f"cannot read the file ({exc.strerror or exc})"]
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # said as Python's "'utf-8' codec can't decode byte 0xe9"
        line = raw[: exc.start].count(b"\n") + 1
        raise OffersFileError(
            str(path),
            [
                f"cannot read the file: not UTF-8 text at line {line} (Latin-1 or Windows-1252 "
                "from an editor?); save it as UTF-8"
            ],
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no Python objects
    except yaml.YAMLError as exc:
        raise OffersFileError(str(path), [_yaml_problem(exc)]) from None
    return parse_offers(data, str(path))


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping.

    PyYAML keeps the last of two ``cost:`` lines of an offer (or of two rates of one segment)
    without a word, so a copied line left behind changed the plan unseen. A key a merge (``<<``)
    brings in may still be overridden, as YAML allows.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Construct a mapping as the safe loader does, after refusing a repeated key."""
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                lines = f"line {line}" if seen[key] == line else f"lines {seen[key]} and {line}"
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"{key!r} is given twice in one mapping ({lines}); "
                    "only one can hold, so the file is refused rather than one kept unseen",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Say where and why a file is not YAML on one line (PyYAML's text spans several)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return f"not valid YAML{where}: {problem}"


def with_measured_rates(
    offers: OffersFile, measured: Mapping[str, Mapping[str, float]]
) -> OffersFile:
    """Return the offers with campaign-measured rates per segment in place of the defaults.

    Parameters
    ----------
    offers : OffersFile
        The offers.
    measured : mapping of str to mapping of str to float
        ``{offer name: {segment: rate}}``, e.g. from :func:`models.campaigns.measured_rates`.
        Offers not named keep their rates.

    Returns
    -------
    OffersFile
        A new, validated offers file.

    Raises
    ------
    OffersFileError
        If an offer named in ``measured`` is not in the file, or a rate is outside [-1, 1].
    """
    unknown = sorted(set(measured) - {o.name for o in offers.offers})
    if unknown:
        raise OffersFileError("<measured rates>", [f"offer {unknown[0]!r} is not in the file"])
    data = offers.model_dump()
    for offer in data["offers"]:
        if offer["name"] in measured:
            response = offer["response"] or {"default": 1.0}
            offer["response"] = response | {"measured": dict(measured[offer["name"]])}
    return parse_offers(data, "<measured rates>")
