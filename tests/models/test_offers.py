"""The offers file: the example loads, every bad field is named with its offer."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.contracts import CHANNELS
from models.offers import (
    OFFER_KINDS,
    SEGMENTS,
    TIER_NAMES,
    OffersFileError,
    load_offers,
    parse_offers,
    with_measured_rates,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "offers.yaml"
README = ROOT / "README.md"


def _offer(**fields: object) -> dict[str, object]:
    return (
        {"name": "o", "kind": "retention", "channel": "email", "cost": 1.0}
        | {"response": {"default": 0.1}}
        | fields
    )


def test_example_file_loads_with_every_kind() -> None:
    offers = load_offers(EXAMPLE)
    assert {o.kind for o in offers.offers} == set(OFFER_KINDS)
    assert all(o.channel in CHANNELS for o in offers.offers)
    assert offers.channels["phone"].capacity == 1500
    call = offers.offer("retention_call")
    assert call.rates.rate("hibernating", "top_1pct") == 0.25
    assert call.rates.rate("hibernating", "top_5pct") == 0.20
    assert call.rates.rate("hibernating", "rest") == 0.15


def test_rate_precedence_measured_segment_tier_default() -> None:
    offers = parse_offers(
        {
            "offers": [
                _offer(
                    response={
                        "default": 0.1,
                        "segments": {"at_risk": 0.2},
                        "value_tiers": {"top_5pct": 0.3},
                    }
                )
            ]
        }
    )
    rates = offers.offers[0].rates
    assert rates.rate("at_risk", "top_5pct") == 0.2
    assert rates.rate("cant_lose", "top_5pct") == 0.3
    assert rates.rate(None, None) == 0.1
    measured = with_measured_rates(offers, {"o": {"at_risk": -0.05, "cant_lose": 0.07}})
    rates = measured.offers[0].rates
    assert rates.rate("at_risk", "top_5pct") == -0.05
    assert rates.rate("cant_lose", "top_5pct") == 0.07
    assert rates.rate("lost", "top_5pct") == 0.3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("response", {"default": 0.1, "value_tiers": {"top_1": 0.25}}),
        ("eligibility", {"value_tiers": ["top_5"]}),
    ],
)
def test_a_value_tier_the_value_table_never_has_is_refused(field: str, value: object) -> None:
    """Before: the example's ``top_1``/``top_5`` (the value table says ``top_1pct``/``top_5pct``)
    were read and never matched a customer: the call's top-tier rates silently never applied."""
    with pytest.raises(OffersFileError) as caught:
        parse_offers({"offers": [_offer(**{field: value})]})
    message = str(caught.value)
    assert f"offer 'o', field {field}.value_tiers: no value tier is called 'top_" in message
    assert "(is it 'top_1pct'?)" in message or "(is it 'top_5pct'?)" in message
    assert "top_1pct, top_5pct, top_20pct, rest" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("response", {"default": 0.1, "segments": {"at_risk": 0.2, "at_rsk": 0.3}}),
        ("eligibility", {"segments": ["cant_lose", "at_rsk"]}),
    ],
)
def test_a_segment_the_value_table_never_has_is_refused(field: str, value: object) -> None:
    """Before: a misspelt segment was read and matched no customer, so its rate or its
    eligibility condition silently never applied (an eligibility list of misspelt names alone
    made the offer reach nobody)."""
    with pytest.raises(OffersFileError, match=r"^offers\.yaml: ") as caught:
        parse_offers({"offers": [_offer(**{field: value})]}, "offers.yaml")
    message = str(caught.value)
    assert (
        f"offer 'o', field {field}.segments: no RFM segment is called 'at_rsk' (is it 'at_risk'?);"
    ) in message
    assert ", ".join(SEGMENTS) in message  # only at_rsk is called unknown: at_risk is not


def test_the_readme_lists_the_names_the_file_is_checked_against() -> None:
    """The README's targeting section lists the segment and tier names in full: they stay the
    ones the check uses."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert ", ".join(f"`{name}`" for name in SEGMENTS) in text
    assert ", ".join(f"`{name}`" for name in TIER_NAMES) in text


def test_cross_sell_defaults_to_the_propensity() -> None:
    offers = parse_offers(
        {
            "offers": [
                {
                    "name": "x",
                    "kind": "cross_sell",
                    "channel": "email",
                    "cost": 0.3,
                    "category": "shoes",
                    "expected_margin": 20,
                }
            ]
        }
    )
    assert offers.offers[0].rates.rate("any", None) == 1.0


def test_a_negative_expected_margin_is_refused_unless_stored() -> None:
    """polish30: a cross-sell conversion's margin of -20 was taken (the cost had to be 0 or more):
    every contact was worth less than its cost, or, times a negative measured rate, more."""
    offer = _offer(kind="cross_sell", response=None, category="shoes", expected_margin=-20)
    with pytest.raises(OffersFileError, match=r"^offers\.yaml: ") as caught:
        parse_offers({"offers": [offer]}, "offers.yaml")
    assert "offer 'o', field expected_margin: -20 is negative" in str(caught.value)
    zero = parse_offers({"offers": [offer | {"expected_margin": 0}]})
    assert zero.offers[0].expected_margin == 0
    # a stored plan's offers are read as they were kept, like its segment names
    assert parse_offers({"offers": [offer]}, stored=True).offers[0].expected_margin == -20


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        (_offer(channel="pigeon"), "offer 'o', field channel: unknown channel 'pigeon'"),
        (_offer(cost=-2), "offer 'o', field cost"),
        (_offer(kind="upsell"), "offer 'o', field kind"),
        (_offer(response={"default": 1.5}), "offer 'o', field response.default"),
        (_offer(response=None), "offer 'o': response: required for a retention offer"),
        (_offer(kind="cross_sell", response=None), "category: required for a cross_sell offer"),
        (_offer(category="shoes"), "category: only a cross_sell offer has one"),
        (_offer(eligibility={"population": "vip"}), "field eligibility.population"),
        (_offer(max_contacts=-1), "offer 'o', field max_contacts"),
        (_offer(colour="red"), "offer 'o', field colour: not a field of an offer, which has"),
        ({"kind": "retention", "channel": "email", "cost": 1}, "offer #1, field name"),
        # polish30: said as "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]*$'"
        (
            _offer(name="retention call"),
            "offer 'retention call', field name: cannot name an offer: use letters, digits, '.', "
            "'_' or '-', starting with a letter or digit (no spaces)",
        ),
    ],
)
def test_bad_offer_names_offer_and_field(offer: dict[str, object], expected: str) -> None:
    with pytest.raises(OffersFileError, match=r"^<offers>: ") as info:
        parse_offers({"offers": [offer]})
    assert expected in str(info.value)


def test_a_misspelt_key_is_named_with_the_field_it_looks_like() -> None:
    """polish30: a misspelt optional key (``max_contact``, ``segmnets``, ``capcity``) was said as
    "Extra inputs are not permitted", leaving the field meant to be found."""
    offer = _offer(max_contact=800, eligibility={"segmnets": ["at_risk"]})
    with pytest.raises(OffersFileError) as info:
        parse_offers({"offers": [offer], "channels": {"phone": {"capcity": 3}}, "max_contact": 9})
    assert str(info.value).split("; ") == [
        "<offers>: offer 'o', field eligibility.segmnets: not a field of eligibility (is it "
        "'segments'?), which has population, unresolved_complaint, min_churn_probability, "
        "segments, value_tiers",
        "offer 'o', field max_contact: not a field of an offer (is it 'max_contacts'?), which "
        "has name, kind, channel, cost, response, eligibility, max_contacts, category, "
        "expected_margin, description",
        "field channels.phone.capcity: not a field of a channel (is it 'capacity'?), which has "
        "capacity",
        "field max_contact: not a field of the file (is it 'max_contacts'?), which has offers, "
        "channels, max_contacts",
    ]


def test_a_rate_given_as_a_percentage_is_said_as_one() -> None:
    """polish30: a response rate or minimum churn probability of 15 (for 15%) was said as
    pydantic's "Input should be less than or equal to 1"."""
    offer = _offer(
        response={"default": 15, "segments": {"at_risk": 22.5}},
        eligibility={"min_churn_probability": "30"},
    )
    with pytest.raises(OffersFileError) as info:
        parse_offers({"offers": [offer]})
    shares = "is above 1: rates and probabilities are shares, not percentages (0.15 for 15%)"
    assert str(info.value).split("; ") == [
        f"<offers>: offer 'o', field response.default: 15 {shares}",
        f"offer 'o', field response.segments.at_risk: 22.5 {shares}",
        f"offer 'o', field eligibility.min_churn_probability: 30 {shares}",
    ]
    with pytest.raises(OffersFileError, match=r"response.default: Input should be greater than"):
        parse_offers({"offers": [_offer(response={"default": -2})]})  # a bound of its own


def test_a_number_written_with_a_comma_or_a_currency_is_said_as_such() -> None:
    """polish30: `cost: 12,50` (a decimal comma), `max_contacts: 1,000` or `cost: 12 EUR` was
    said as pydantic's "Input should be a valid number, unable to parse string as a number"."""
    offer = _offer(cost="12,50", max_contacts="1 000")
    with pytest.raises(OffersFileError) as info:
        parse_offers({"offers": [offer], "max_contacts": "1,000"})
    whole = "is not a whole number: digits alone, no thousands separator (1500)"
    assert str(info.value).split("; ") == [
        "<offers>: offer 'o', field cost: '12,50' is not a number: a point for decimals, no "
        "thousands separator or currency (12.5)",
        f"offer 'o', field max_contacts: '1 000' {whole}",
        f"field max_contacts: '1,000' {whole}",
    ]


def test_a_value_where_a_mapping_stands_is_said_with_its_fields() -> None:
    """polish30: `response: 0.15` (the default alone) or a channel's `phone: 1500` was said as
    pydantic's "Input should be a valid dictionary or instance of Response"."""
    with pytest.raises(OffersFileError) as info:
        parse_offers({"offers": [_offer(response=0.15)], "channels": {"phone": 1500}})
    assert str(info.value).split("; ") == [
        "<offers>: offer 'o', field response: 0.15 is not a mapping: response takes 'field: "
        "value' lines of its fields (default, segments, value_tiers, measured)",
        "field channels.phone: 1500 is not a mapping: a channel takes 'field: value' lines of its "
        "fields (capacity)",
    ]


def test_file_level_problems(tmp_path: Path) -> None:
    with pytest.raises(OffersFileError, match="listed twice"):
        parse_offers({"offers": [_offer(), _offer()]})
    with pytest.raises(OffersFileError, match=r"field channels: .*unknown channel 'telex'"):
        parse_offers({"offers": [_offer()], "channels": {"telex": {"capacity": 3}}})
    with pytest.raises(OffersFileError, match="field offers"):
        parse_offers({"offers": []})
    bad = tmp_path / "offers.yaml"
    bad.write_text("offers: [\n", encoding="utf-8")
    with pytest.raises(OffersFileError, match=f"^{bad}: not valid YAML") as info:
        load_offers(bad)
    # one line, with where: PyYAML's own text spanned five lines and named "<unicode string>"
    assert str(info.value) == (
        f"{bad}: not valid YAML at line 2, column 1: expected the node content, but found "
        "'<stream end>'"
    )
    with pytest.raises(OffersFileError, match=r"cannot read the file \(No such file or direc"):
        load_offers(tmp_path / "missing.yaml")
    bad.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(OffersFileError, match="expected a mapping"):
        load_offers(bad)
    # polish30: a Parquet or CSV file (outcomes, say) was said to be Latin-1, or no mapping
    for name, kind in (("outcomes.parquet", "a Parquet file"), ("outcomes.csv", "a CSV file")):
        with pytest.raises(OffersFileError) as info:
            load_offers(tmp_path / name)
        assert str(info.value) == (
            f"{tmp_path / name}: cannot read the file: {kind}, not an offers file (YAML, as "
            "docs/examples/offers.yaml)"
        )
    bad.write_text(
        '{"offers": [{"name": "o", "kind": "retention", "channel": "email", '
        '"cost": 1, "response": {"default": 0.1}}]}',
        encoding="utf-8",
    )
    assert load_offers(bad.rename(tmp_path / "offers.json")).offers[0].name == "o"  # JSON is YAML
    bad = tmp_path / "offers.yaml"
    # polish30: said as Python's "'utf-8' codec can't decode byte 0xe9 in position 27"
    bad.write_text("offers:\n  - name: rétention\n", encoding="latin-1")
    with pytest.raises(OffersFileError) as info:
        load_offers(bad)
    assert str(info.value) == (
        f"{bad}: cannot read the file: not UTF-8 text at line 2 (Latin-1 or Windows-1252 from an "
        "editor?); save it as UTF-8"
    )


def test_a_key_given_twice_is_refused_with_its_lines(tmp_path: Path) -> None:
    """walk28: PyYAML kept the last of two `cost:` lines of an offer (a copied line left behind)
    and of two rates of one segment, without a word: the plan changed unseen (486 contacts for
    the example file's 2,877 on the sample data)."""
    example = EXAMPLE.read_text(encoding="utf-8")
    path = tmp_path / "offers.yaml"
    path.write_text(example.replace("    cost: 0.60 ", "    cost: 0.60\n    cost: 6.00 ", 1))
    with pytest.raises(OffersFileError) as info:
        load_offers(path)
    line = next(i for i, text in enumerate(example.splitlines()) if "cost: 0.60" in text)
    assert str(info.value) == (
        f"{path}: not valid YAML at line {line + 2}, column 5: 'cost' is given twice in one "
        f"mapping (lines {line + 1} and {line + 2}); only one can hold, so the file is refused "
        "rather than one kept unseen"
    )
    path.write_text(
        "offers:\n  - {name: a, kind: retention, channel: email, cost: 1, response: "
        "{default: 0.1, segments: {at_risk: 0.2, at_risk: 0.3}}}\n"
    )
    with pytest.raises(
        OffersFileError, match=r"'at_risk' is given twice in one mapping \(line 2\)"
    ):
        load_offers(path)
    # a key a merge brings in may still be overridden, as YAML allows
    path.write_text(
        "base: &base {kind: retention, channel: email, cost: 1, response: {default: 0.1}}\n"
        "offers:\n  - {<<: *base, name: a, cost: 2}\n"
    )
    with pytest.raises(
        OffersFileError, match="field base: not a field of the file"
    ):  # parsed, checked
        load_offers(path)
    assert load_offers(EXAMPLE).offers  # the example file has no key twice


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(OffersFileError) as info:
        parse_offers({"offers": [_offer(name="a", channel="x"), _offer(name="b", cost="free")]})
    assert len(info.value.problems) == 2
    assert "offer 'a'" in info.value.problems[0]
    assert "offer 'b'" in info.value.problems[1]


def test_measured_rates_for_unknown_offer() -> None:
    offers = parse_offers({"offers": [_offer()]})
    with pytest.raises(OffersFileError, match="offer 'nope' is not in the file"):
        with_measured_rates(offers, {"nope": {"a": 0.1}})
