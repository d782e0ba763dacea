"""Reading and validating events and customers files (features/events.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.contracts import CUSTOMER_COLUMNS, EVENT_REQUIRES, EVENT_TYPES, event_schema
from features.events import (
    MAX_LISTED_ROWS,
    EventsValidationError,
    Problem,
    _exact_duplicates,
    load_customers,
    load_events,
    read_customers,
    read_events,
    stage_events,
    stage_orders,
    validate_events,
)

DATA = Path(__file__).resolve().parents[1] / "data"
NOW = datetime(2025, 1, 1, tzinfo=UTC)
HEADER = "customer_id,ts,event_type,channel,amount,quantity,score,ref_id"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def write_csv(path: Path, *lines: str | bytes) -> Path:
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return path


def errors_of(path: Path, **kw: object) -> list[Problem]:
    with pytest.raises(EventsValidationError) as info:
        load_events(path, now=kw.pop("now", NOW))  # type: ignore[arg-type]
    return info.value.errors


def bad_corpus(tmp_path: Path) -> Path:
    """One CSV with one row per kind of row-level error (row numbers in the comments)."""
    return write_csv(
        tmp_path / "bad.csv",
        HEADER,
        "c1,2024-01-01,order,web,10,1,,o1",  # 1: fine
        ",2024-01-01,visit,web,,,,",  # 2: empty customer_id
        "c\x85x,2024-01-01,visit,web,,,,",  # 3: a C1 control character (C0: test_bad_inputs)
        "c4,01/02/2024,visit,web,,,,",  # 4: not ISO 8601
        "c5,2030-01-01,visit,web,,,,",  # 5: future
        "c6,2024-01-01,purchase,web,,,,",  # 6: unknown event type
        "c7,2024-01-01,visit,telepathy,,,,",  # 7: unknown channel
        "c8,2024-01-01,order,web,-5,,,o8",  # 8: negative amount
        "c9,2024-01-01,order,web,,,,o9",  # 9: order without amount
        "c10,2024-01-01,return,web,3,-1,,o1",  # 10: negative quantity
        "c11,2024-01-01,survey,web,,,11,",  # 11: survey score out of range
        "c12,2024-01-01,order,web,abc,,,o12",  # 12: amount not a number
        b"c\xe913,2024-01-01,visit,web,,,,",  # 13: not UTF-8 (latin-1 e-acute)
        "c14,2024-01-01,complaint_resolved,phone,,,,",  # 14: no ref_id
        "c15,2024-01-01,review,web,,,0,",  # 15: review score out of range
        "c16,,visit,web,,,,",  # 16: empty ts
        "c17,2024-01-01,,web,,,,",  # 17: empty event_type
        "c1,2024-01-01,order,web,10,1,,o1",  # 18: exact duplicate of row 1 (warning)
    )


def test_every_kind_of_error_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(EventsValidationError) as info:
        load_events(bad_corpus(tmp_path), now=NOW)
    found = {(p.column, p.rows, p.message.split(" (")[0]) for p in info.value.errors}
    unreadable_ts = "unreadable value: expected ISO 8601 such as 2024-03-01, 2024-03-01 09:30:00 or"
    assert found == {
        ("customer_id", (2,), "customer_id is empty"),
        ("customer_id", (3,), "customer_id contains control characters"),
        ("ts", (4,), unreadable_ts + " 2024-03-01T09:30+08:00"),
        ("ts", (5,), "timestamp after the current time"),
        ("event_type", (6,), "unknown event type"),
        ("channel", (7,), "unknown channel"),
        ("amount", (8,), "negative value"),
        ("amount", (9,), "amount is required for order, return events"),
        ("quantity", (10,), "negative value"),
        ("score", (11,), "score of a survey outside 0-10"),
        ("amount", (12,), "unreadable value: not a number"),
        ("customer_id", (13,), "bytes that are not valid UTF-8"),
        ("ref_id", (14,), "ref_id is required for complaint_resolved events"),
        ("score", (15,), "score of a review outside 1-5"),
        ("ts", (16,), "timestamp is empty"),
        ("event_type", (17,), "event_type is empty"),
    }
    assert all(p.file.endswith("bad.csv") for p in info.value.problems)
    [warning] = [p for p in info.value.problems if p.severity == "warning"]
    assert warning.rows == (18,)
    text = str(info.value)
    assert text.startswith("16 errors in the input:")
    assert "column 'amount', row 12: unreadable value: not a number (e.g. 'abc')" in text
    assert "'purchase' (1 row)" in text


def test_duplicates_are_a_warning_and_kept(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "dup.csv",
        HEADER,
        "c1,2024-01-01,visit,web,,,,",
        "c1,2024-01-01,visit,web,,,,",
        "c2,2024-01-01,visit,web,,,,",
        "c1,2024-01-01T00:00:00Z,visit,web,,,,",  # the same instant written differently
    )
    loaded = load_events(path, now=NOW)
    assert loaded.frame.height == 4
    [warning] = loaded.warnings
    assert (warning.severity, warning.rows, warning.n_rows) == ("warning", (2, 4), 2)


def test_valid_csv_is_typed_to_the_contract() -> None:
    frame = read_events(DATA / "events_tiny.csv", now=NOW)
    assert frame.schema == pl.Schema(event_schema())
    assert frame["ts"].to_list() == [
        utc(2024, 3, 1),
        utc(2024, 3, 5, 14, 30),
        utc(2024, 3, 6, 1, 30),  # 09:30 at +08:00
        utc(2024, 3, 7, 10),
        utc(2024, 3, 2, 8, 15, 30, 250_000),
        utc(2024, 3, 4, 1),  # 20:00 at -05:00
        utc(2024, 3, 4),
        utc(2024, 3, 4),
    ]
    assert frame["amount"].to_list()[:2] == [120.5, 40.0]
    assert frame["score"].to_list()[5:7] == [9.0, 4.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01", utc(2024, 3, 1)),
        ("2024-03-01 09:30", utc(2024, 3, 1, 9, 30)),
        ("2024-03-01T09:30:05", utc(2024, 3, 1, 9, 30, 5)),
        ("2024-03-01T09:30:05.123456789", utc(2024, 3, 1, 9, 30, 5, 123456)),
        ("2024-03-01T09:30:05Z", utc(2024, 3, 1, 9, 30, 5)),
        ("2024-03-01 09:30+0100", utc(2024, 3, 1, 8, 30)),
        ("2024-03-01T01:00:00+08:00", utc(2024, 2, 29, 17)),
        (" 2024-03-01 ", utc(2024, 3, 1)),
        ("2024-02-30", None),
        ("01/03/2024", None),
        ("2024-03-01T09:30:05+08", None),
    ],
)
def test_naive_means_utc_and_offsets_are_converted(text: str, expected: datetime | None) -> None:
    raw = pl.DataFrame({"customer_id": ["c1"], "ts": [text], "event_type": ["visit"]})
    if expected is None:
        with pytest.raises(EventsValidationError, match="unreadable value"):
            validate_events(raw, now=NOW)
    else:
        assert validate_events(raw, now=NOW).frame["ts"].item() == expected


def test_csv_and_parquet_give_the_same_frame(tmp_path: Path) -> None:
    from_csv = read_events(DATA / "events_tiny.csv", now=NOW)
    as_text = tmp_path / "text.parquet"
    pl.read_csv(DATA / "events_tiny.csv", infer_schema=False).write_parquet(as_text)
    typed = tmp_path / "typed.parquet"
    from_csv.write_parquet(typed)
    assert read_events(as_text, now=NOW).equals(from_csv)
    assert read_events(typed, now=NOW).equals(from_csv)


def test_parquet_native_types_are_converted(tmp_path: Path) -> None:
    path = tmp_path / "native.parquet"
    pl.DataFrame(
        {
            "customer_id": [1, 2],
            "ts": [datetime(2024, 3, 1, 9), datetime(2024, 3, 1, 9)],
            "event_type": ["order", "order"],
            "amount": [10, 20],
        }
    ).with_columns(
        pl.col("ts").dt.replace_time_zone("Asia/Shanghai"),
        pl.col("event_type").cast(pl.Categorical),
        pl.col("amount").cast(pl.Int32),
    ).write_parquet(path)
    frame = read_events(path, now=NOW)
    assert frame.schema == pl.Schema(event_schema())
    assert frame["customer_id"].to_list() == ["1", "2"]
    assert frame["ts"].to_list() == [utc(2024, 3, 1, 1)] * 2
    assert frame["amount"].to_list() == [10.0, 20.0]


def test_wrong_column_types(tmp_path: Path) -> None:
    path = tmp_path / "types.parquet"
    pl.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "ts": [1, 2],
            "event_type": ["visit", "visit"],
            "quantity": [True, False],
            "amount": ["1.5", "abc"],
        }
    ).write_parquet(path)
    errors = errors_of(path)
    messages = {(p.column, p.rows, p.message.split(" (")[0]) for p in errors}
    assert messages == {
        ("ts", (), "the column is stored as Int64, expected a timestamp"),
        ("quantity", (), "the column is stored as Boolean, expected a number"),
        ("amount", (2,), "unreadable value: not a number"),
    }


def test_non_finite_numbers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "nan.csv", HEADER, "c1,2024-01-01,order,web,nan,inf,,o1")
    assert {p.column for p in errors_of(path)} == {"amount", "quantity"}


def test_listed_rows_are_capped(tmp_path: Path) -> None:
    rows = [f"c{i},2024-01-01,{'buy' if i % 2 else 'visit'},web,,,," for i in range(1, 61)]
    [problem] = errors_of(write_csv(tmp_path / "many.csv", HEADER, *rows))
    assert problem.n_rows == 30
    assert problem.rows == tuple(range(1, 2 * MAX_LISTED_ROWS, 2))
    assert problem.rows_text() == "1, 3, 5, 7, 9, 11, 13, 15, 17, 19 and 20 more"
    assert "'buy' (30 rows)" in problem.message


def test_row_numbers_hold_across_chunks(tmp_path: Path) -> None:
    n = 300_000
    frame = pl.DataFrame(
        {
            "customer_id": pl.int_range(n, eager=True).cast(pl.String),
            "ts": ["2024-01-01 10:00"] * n,
            "event_type": ["visit"] * n,
        }
    ).with_columns(
        event_type=pl.when(pl.int_range(pl.len()).is_in([123_456, 299_999]))
        .then(pl.lit("bogus"))
        .otherwise("event_type")
    )
    frame.write_csv(tmp_path / "big.csv")
    [problem] = errors_of(tmp_path / "big.csv")
    assert problem.rows == (123_457, 300_000)


def test_a_column_named_in_capitals_is_said_to_differ_in_case(tmp_path: Path) -> None:
    """An export's CUSTOMER_ID, TS, AMOUNT read "required column is missing; the file has:
    'CUSTOMER_ID', 'TS', ..." once per column, and "column ignored" for AMOUNT, as if the
    columns were not there; each now says how to rename or map it (YAML, quoted as in the file)."""
    path = write_csv(
        tmp_path / "caps.csv", 'CUSTOMER_ID," ts",event_type,AMOUNT', "c1,2024-01-01,visit,1"
    )
    with pytest.raises(EventsValidationError) as info:
        load_events(path, now=NOW)
    messages = {e.column: e.message for e in info.value.problems}
    assert messages["customer_id"] == (
        "required column is missing; the file has 'CUSTOMER_ID': names must match exactly, so "
        "rename it customer_id or map it with --mapping (customer_id: 'CUSTOMER_ID')"
    )
    assert messages["ts"].endswith("map it with --mapping (ts: ' ts')")
    assert messages["AMOUNT"] == (
        "column ignored: not in the events contract; names must match exactly, so rename it "
        "amount or map it with --mapping (amount: 'AMOUNT')"
    )
    people = write_csv(tmp_path / "people.csv", "Customer_Id,region", "c1,north")
    with pytest.raises(EventsValidationError) as info:
        load_customers(people, now=NOW)
    [error] = info.value.errors
    assert error.message.endswith(
        "rename it customer_id or map it with --mapping (customers: {customer_id: 'Customer_Id'})"
    )


def test_missing_required_columns_and_unknown_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cols.csv", "customer_id,when,event_type", "c1,2024-01-01,visit")
    with pytest.raises(EventsValidationError) as info:
        load_events(path, now=NOW)
    [error] = info.value.errors
    assert (error.column, error.rows) == ("ts", ())
    assert "required column is missing" in error.message
    assert "'when'" in error.message
    [warning] = [p for p in info.value.problems if p.severity == "warning"]
    assert (warning.column, warning.message) == (
        "when",
        "column ignored: not in the events contract",
    )


@pytest.mark.parametrize(
    ("sep", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "vertical bar")]
)
def test_other_separator_is_hinted_once(tmp_path: Path, sep: str, name: str) -> None:
    rows = ["c1;2024-01-01;visit", "c2;2024-01-02;visit", "c3;2024-01-03;visit"]
    path = write_csv(
        tmp_path / "semi.csv",
        "customer_id;ts;event_type".replace(";", sep),
        *(r.replace(";", sep) for r in rows),
    )
    with pytest.raises(EventsValidationError) as info:
        load_events(path, now=NOW)
    # one problem for the file: no missing columns, no ignored column, no false duplicates
    [problem] = info.value.problems
    assert (problem.column, problem.rows, problem.severity) == (None, (), "error")
    assert f"seems to use {name}s as its separator" in problem.message


def test_required_column_missing_for_an_event_type(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "noamount.csv", "customer_id,ts,event_type", "c1,2024-01-01,order")
    [error] = errors_of(path)
    assert error.column == "amount"
    assert error.rows == (1,)
    assert "the file has no 'amount' column" in error.message


def test_future_is_relative_to_now(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", HEADER, "c1,2024-06-01 12:00,visit,web,,,,")
    [error] = errors_of(path, now=utc(2024, 6, 1, 11, 59))
    assert error.message.startswith("timestamp after the current time (2024-06-01 11:59:00 UTC)")
    assert load_events(path, now=utc(2024, 6, 1, 12)).frame.height == 1
    assert load_events(path, now=datetime(2024, 6, 2)).frame.height == 1  # naive now means UTC


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        ((HEADER + "\n").encode(), "no data rows"),
        (b"x" * (2 << 20), "the first line is longer than 1 MiB"),
        (b'customer_id,ts,event_type\n"c1,2024-01-01,visit\n', "not a readable CSV"),
        ((HEADER + "\n" + "c1,2024-01-01,visit,web,,,,,9\n").encode(), "more fields than"),
    ],
)
def test_unreadable_csv(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    [error] = errors_of(path)
    assert error.column is None
    assert error.message.startswith(message)


def test_rows_with_more_fields_than_the_header_are_named_with_their_line(tmp_path: Path) -> None:
    """heavy32: a row with an unquoted comma was said as Polars' "not a readable CSV: found more
    fields than defined in 'Schema'", naming no row; a quoted comma or line break is no extra
    field. Now the rows are named (data rows), the first's line as a spreadsheet shows it."""
    path = tmp_path / "events.csv"
    rows = [
        "c1,2024-01-01,visit,web,,,,",
        'c2,2024-01-01,order,web,"1,5",1,,"o\n2"',  # quoted: a comma and a line break
        "c3,2024-01-02,order,web,12,50,1,,,o3",  # 12,50 unquoted: two more fields
        "c4,2024-01-03,visit,web,,,,",
        "c5,2024-01-04,visit,web,,,,,",
    ]
    path.write_text("\ufeff" + HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    [error] = errors_of(path)
    assert str(error) == (
        f"{path}, rows 3, 5: more fields than the header's 8 (row 3, line 4 in a spreadsheet, "
        "has 10): a separator inside a value that is not quoted, or values shifted? quote such "
        "values or fix the rows"
    )


def test_rows_with_fewer_fields_than_the_header_are_a_warning_naming_them(tmp_path: Path) -> None:
    """heavy32: a row cut short was read with its missing fields as empty, unsaid (an order
    without its ref_id, a visit without channel and amount passed as they were). Now a warning
    names the rows and the first's line; a quoted line break is no short row, and a file whose
    lines all have the header's fields (however many are empty) is said nothing of."""
    path = tmp_path / "events.csv"
    rows = [
        "c1,2024-01-01,visit,web,,,,",
        'c2,2024-01-01,order,web,10,1,,"o\n2"',  # a quoted line break: a whole row
        "c3,2024-01-02,visit",  # cut short: five fields missing
        "c4,2024-01-03,visit,web,,,,",
    ]
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    [warning] = load_events(path, now=NOW).warnings
    assert warning.severity == "warning" and str(warning) == (
        f"{path}, row 3: fewer fields than the header's 8 (row 3, line 4 in a spreadsheet, has "
        "3): the fields missing at the end read as empty; a line cut short, or a value broken "
        "over lines without quotes?"
    )
    del rows[2]
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert load_events(path, now=NOW).warnings == ()


def test_a_100_mb_line_without_newline_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "oneline.csv"
    with path.open("wb") as f:
        for _ in range(100):
            f.write(b"y" * (1 << 20))
    [error] = errors_of(path)
    path.unlink()
    assert "first line is longer than 1 MiB" in error.message


def test_long_values_are_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "long.csv", HEADER, f"{'c' * 5000},2024-01-01,visit,web,,,,")
    [error] = errors_of(path)
    assert (error.column, error.message) == ("customer_id", "value longer than 1,000 characters")


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.csv", "file not found"), ("events.xlsx", "unsupported file type '.xlsx'")],
)
def test_bad_paths(tmp_path: Path, name: str, message: str) -> None:
    if name.endswith(".xlsx"):
        (tmp_path / name).write_bytes(b"PK")
    [error] = errors_of(tmp_path / name)
    assert error.message.startswith(message)


def test_truncated_parquet(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    read_events(DATA / "events_tiny.csv", now=NOW).write_parquet(good)
    data = good.read_bytes()
    for name, content in [("cut.parquet", data[: len(data) // 2]), ("junk.parquet", b"PAR1")]:
        (tmp_path / name).write_bytes(content)
        [error] = errors_of(tmp_path / name)
        assert error.message.startswith("unreadable Parquet file")


def test_directory_of_parquet_names_the_part_file(tmp_path: Path) -> None:
    parts = tmp_path / "events"
    parts.mkdir()
    good = read_events(DATA / "events_tiny.csv", now=NOW)
    good.write_parquet(parts / "part-0.parquet")
    good.head(2).with_columns(
        event_type=pl.Series(["order", "buy"]), amount=pl.Series([120.5, None])
    ).write_parquet(parts / "part-1.parquet")
    (parts / ".part-2.parquet.123.ab.tmp").write_bytes(b"ignored")
    with pytest.raises(EventsValidationError) as info:
        load_events(parts, now=NOW)
    [error] = info.value.errors
    assert (Path(error.file).name, error.column, error.rows) == (
        "part-1.parquet",
        "event_type",
        (2,),
    )
    [warning] = [p for p in info.value.problems if p.severity == "warning"]
    assert (Path(warning.file).name, warning.rows) == ("part-1.parquet", (1,))


def test_customers_in_an_events_folder_are_named_as_customers(tmp_path: Path) -> None:
    """The demo's data folder given as events: its customers file gets one error saying to pass
    it with --customers (not missing ts and event_type, nor its columns "ignored"); the events
    files are checked as before, in memory and staged; a database table gets the table flags."""
    folder = tmp_path / "sample"
    folder.mkdir()
    read_events(DATA / "events_tiny.csv", now=NOW).write_parquet(folder / "events.parquet")
    read_customers(DATA / "customers_tiny.csv", now=NOW).write_parquet(folder / "customers.parquet")
    staging = tmp_path / "staging"
    staging.mkdir()
    for load in (load_events, lambda path, now: stage_events(path, now=now, folder=staging)):
        with pytest.raises(EventsValidationError) as info:
            load(folder, now=NOW)
        [problem] = info.value.problems
        customers = str(folder / "customers.parquet")
        assert (problem.file, problem.column, problem.severity) == (customers, None, "error")
        assert f"--customers {customers}" in problem.message
        assert "customers, not events" in problem.message and "no ts, event_type" in problem.message
    table = read_customers(DATA / "customers_tiny.csv", now=NOW)
    with pytest.raises(EventsValidationError) as info:
        validate_events(table, now=NOW, file="duckdb:///crm.db customers")
    [problem] = info.value.problems
    assert "--customers-table or --customers-query, not as the events table" in problem.message
    # an events file with its time column misnamed is still told what is missing
    path = write_csv(tmp_path / "typo.csv", "customer_id,when,event_type,region", "c1,x,visit,n")
    assert [e.column for e in errors_of(path)] == ["ts"]


def test_a_campaign_in_an_events_folder_is_named_as_a_campaign(tmp_path: Path) -> None:
    """The sample's folder with its campaign given as events: campaign.parquet gets one error
    saying to record it with guanxi campaign record (not missing ts and event_type, nor its columns
    "ignored"), in memory and staged; a database table is told to go to a file; a table that lacks
    an outcomes column, or has an events column, is checked as events as before."""
    folder = tmp_path / "sample"
    folder.mkdir()
    read_events(DATA / "events_tiny.csv", now=NOW).write_parquet(folder / "events.parquet")
    campaign = pl.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "campaign": ["spring", "spring"],
            "offer": ["retention_email", "retention_email"],
            "control": [False, True],
            "responded": [True, False],
            "ordered": [True, False],
            "revenue": [80.0, 0.0],
            "margin": [24.0, 0.0],
            "uplift_type": ["persuadable", "lost_cause"],  # the sample's truth columns pass
        }
    )
    campaign.write_parquet(folder / "campaign.parquet")
    staging = tmp_path / "staging"
    staging.mkdir()
    for load in (load_events, lambda path, now: stage_events(path, now=now, folder=staging)):
        with pytest.raises(EventsValidationError) as info:
            load(folder, now=NOW)
        [problem] = info.value.problems
        path = str(folder / "campaign.parquet")
        assert (problem.file, problem.column, problem.severity) == (path, None, "error")
        assert f"guanxi campaign record --file {path}" in problem.message
        assert problem.message.startswith("a campaign's outcomes, not events (it has offer, ")
        assert "no ts, event_type" in problem.message
    with pytest.raises(EventsValidationError) as info:
        validate_events(campaign, now=NOW, file="duckdb:///crm.db outcomes")
    [problem] = info.value.problems
    assert "to a file for guanxi campaign record --file, not as the events table" in problem.message
    # without one outcomes column, or with ts: the events' own errors, as for any table
    for frame in (campaign.drop("ordered"), campaign.with_columns(ts=pl.lit("2024-01-01"))):
        with pytest.raises(EventsValidationError) as info:
            validate_events(frame, now=NOW, file="x.parquet")
        assert {p.column for p in info.value.problems if p.severity == "error"} & {
            "ts",
            "event_type",
        }
        assert not any("campaign record" in p.message for p in info.value.problems)


def test_empty_directory(tmp_path: Path) -> None:
    [error] = errors_of(tmp_path)
    assert error.message == "the directory holds no .parquet or .csv files"


def test_directory_of_csv_files(tmp_path: Path) -> None:
    """A directory without Parquet files is read as its CSV files, in name order; rows count
    within each file; a directory with Parquet files is read as those alone."""
    csvs = tmp_path / "csv"
    csvs.mkdir()
    write_csv(csvs / "part-1.csv", HEADER, "c2,2024-01-02,visit,web,,,,", "c2,2024-01-03,nope,,,,,")
    write_csv(csvs / "part-0.csv", HEADER, "c1,2024-01-01,visit,web,,,,")
    write_csv(csvs / "_skipped.csv", HEADER, "c9,2024-01-01,nope,,,,,")
    with pytest.raises(EventsValidationError) as info:
        load_events(csvs, now=NOW)
    [error] = info.value.errors
    assert (Path(error.file).name, error.column, error.rows) == ("part-1.csv", "event_type", (2,))
    good = csvs / "part-1.csv"
    write_csv(good, HEADER, "c2,2024-01-02,visit,web,,,,")
    assert load_events(csvs, now=NOW).frame["customer_id"].to_list() == ["c1", "c2"]
    load_events(csvs / "part-0.csv", now=NOW).frame.write_parquet(csvs / "only.parquet")
    assert load_events(csvs, now=NOW).frame["customer_id"].to_list() == ["c1"]


def test_customers(tmp_path: Path) -> None:
    loaded = load_customers(DATA / "customers_tiny.csv", now=NOW)
    frame = loaded.frame
    assert frame.columns == [*(c.name for c in CUSTOMER_COLUMNS), "loyalty_tier"]
    assert frame.schema["loyalty_tier"] == pl.Int64
    assert frame["signup_ts"].to_list() == [utc(2023, 1, 15), utc(2023, 6, 1, 10), None]
    assert loaded.warnings == ()
    assert read_customers(DATA / "customers_tiny.csv", now=NOW).equals(frame)


def test_customer_problems(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "customers.csv",
        "customer_id,signup_ts,customer_type",
        "c1,2023-01-01,consumer",
        "c1,2023-01-01,consumer",  # exact duplicate: dropped with a warning
        "c2,2023-01-01,consumer",
        "c2,2023-02-01,consumer",  # same id, different row: error
        "c3,2099-01-01,alien",  # future, unknown type
    )
    with pytest.raises(EventsValidationError) as info:
        load_customers(path, now=NOW)
    found = {(p.severity, p.column, p.rows, p.message.split(" (")[0]) for p in info.value.problems}
    assert found == {
        ("warning", None, (2,), "exact duplicate of an earlier row"),
        ("error", "customer_id", (3, 4), "customer_id appears on several rows that differ"),
        ("error", "signup_ts", (5,), "timestamp after the current time"),
        ("error", "customer_type", (5,), "unknown customer type"),
    }


def test_customer_duplicates_are_dropped(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", "customer_id,region", "c1,north", "c1,north", "c2,south")
    loaded = load_customers(path, now=NOW)
    assert loaded.frame["customer_id"].to_list() == ["c1", "c2"]
    assert [w.rows for w in loaded.warnings] == [(2,)]


def test_customer_rows_without_an_id_are_no_exact_duplicates(tmp_path: Path) -> None:
    """polish29: rows with an empty customer_id were also warned of as exact duplicates of
    each other (and dropped), beside the error of their missing id, as events' rows with an
    unreadable ts were before 575d994; only the missing ids are reported."""
    path = write_csv(
        tmp_path / "c.csv",
        "customer_id,region",
        ",north",
        ",north",
        "c1,south",
        "c1,south",  # row 4: a true copy, still dropped with a warning
    )
    with pytest.raises(EventsValidationError) as info:
        load_customers(path, now=NOW)
    [error] = info.value.errors
    assert (error.column, error.rows) == ("customer_id", (1, 2))
    [warning] = [p for p in info.value.problems if p.severity == "warning"]
    assert warning.rows == (4,) and warning.message.startswith("exact duplicate")


rows = st.tuples(
    st.text(alphabet="abcXYZ019-_", min_size=1, max_size=8),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2024, 12, 31)),
    st.sampled_from([t for t in EVENT_TYPES if t not in EVENT_REQUIRES]),
    st.one_of(st.none(), st.floats(0, 1e6)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(rows, min_size=1, max_size=20))
def test_valid_frames_round_trip_through_csv(
    tmp_path_factory: pytest.TempPathFactory, data: list
) -> None:
    frame = pl.DataFrame(
        [
            {"customer_id": c, "ts": t.replace(tzinfo=UTC), "event_type": e, "quantity": q}
            for c, t, e, q in data
        ],
        schema=event_schema(),
    )
    assert validate_events(frame, now=NOW).frame.equals(frame)
    path = tmp_path_factory.mktemp("rt") / "events.csv"
    frame.write_csv(path)
    assert read_events(path, now=NOW).equals(frame)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.integers(0, 2)), max_size=40))
def test_exact_duplicates_flag_every_repeat_after_the_first(rows: list[tuple]) -> None:
    """The sorted-hash search flags what comparing whole rows does: each repeat, not the first."""
    frame = pl.DataFrame(rows, schema={"x": pl.String, "y": pl.Int64}, orient="row")
    expected = [row in rows[:i] for i, row in enumerate(rows)]
    assert _exact_duplicates(frame).to_list() == expected


def _bad_parquet_parts(tmp_path: Path) -> Path:
    """The bad corpus as a directory of two Parquet files of text, with an extra column and a
    duplicate across the files (warnings) and the errors of every row-level check."""
    rows = pl.read_csv(bad_corpus(tmp_path), infer_schema=False, encoding="utf8-lossy")
    rows = rows.with_columns(note=pl.lit("x"))
    folder = tmp_path / "parts"
    folder.mkdir()
    rows.head(10).write_parquet(folder / "part-0.parquet")
    pl.concat([rows.slice(10), rows.head(1)]).write_parquet(folder / "part-1.parquet")
    return folder


@pytest.mark.parametrize("stage", [stage_events, stage_orders])
@pytest.mark.parametrize("corpus", [bad_corpus, _bad_parquet_parts])
def test_staged_events_have_the_problems_of_loaded_ones(
    tmp_path: Path, corpus: Callable[[Path], Path], stage: Callable[..., object]
) -> None:
    """stage_events reports what load_events does: messages, rows, files and severities; so
    does stage_orders, which writes only the orders (the bad rows here are not orders)."""
    path = corpus(tmp_path)
    with pytest.raises(EventsValidationError) as loaded:
        load_events(path, now=NOW)
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(EventsValidationError) as staged:
        stage(path, now=NOW, folder=staging)
    assert staged.value.problems == loaded.value.problems
    assert {p.severity for p in loaded.value.problems} == {"error", "warning"}


def test_staged_events_are_the_loaded_frame(tmp_path: Path) -> None:
    """Valid events with warnings: the staged scan is the loaded frame, with the same warnings."""
    parts = tmp_path / "events"
    parts.mkdir()
    good = read_events(DATA / "events_tiny.csv", now=NOW)
    good.with_columns(note=pl.lit(1)).write_parquet(parts / "part-0.parquet")
    good.tail(3).write_parquet(parts / "part-1.parquet")  # three duplicates of part 0's rows
    loaded = load_events(parts, now=NOW)
    staging = tmp_path / "staging"
    staging.mkdir()
    staged = stage_events(parts, now=NOW, folder=staging)
    assert staged.warnings == loaded.warnings
    assert [(p.column, p.rows) for p in staged.warnings] == [("note", ()), (None, (1, 2, 3))]
    assert staged.height == loaded.frame.height == good.height + 3
    assert_frame_equal(staged.frame.collect(), loaded.frame)
    # only the orders staged: the same warnings and count, the orders of the frame in its order
    (tmp_path / "orders").mkdir()
    orders = stage_orders(parts, now=NOW, folder=tmp_path / "orders")
    assert orders.warnings == loaded.warnings and orders.height == loaded.frame.height
    assert orders.last == loaded.frame["ts"].max()
    expected = loaded.frame.filter(pl.col("event_type") == "order")
    assert 0 < expected.height < loaded.frame.height
    assert_frame_equal(orders.frame.collect(), expected)
    assert [f.parent for f in orders.files] == [tmp_path / "orders"] * 2


def _amounts_csv(tmp_path: Path) -> Path:
    """Orders whose median positive amount is 40 (a free order aside) and two above 1,000 times
    it: 45,000 (cents typed as euros?) in row 4 and 300,000 in row 7; 29,000 is under it."""
    amounts = ["10", "20", "30", "45000", "0", "40", "300000", "50", "29000", "25"]
    return write_csv(
        tmp_path / "amounts.csv",
        HEADER,
        *(f"c{i},2024-01-0{i % 9 + 1},order,web,{a},1,,o{i}" for i, a in enumerate(amounts)),
    )


def test_implausibly_large_amounts_are_a_warning_in_memory_and_staged(tmp_path: Path) -> None:
    """More than 1,000x the file's median positive amount: a warning naming the rows and the
    rule, the rows kept; staging the file reports the same warning."""
    path = _amounts_csv(tmp_path)
    loaded = load_events(path, now=NOW)
    [warning] = loaded.warnings
    assert (warning.column, warning.rows, warning.n_rows, warning.severity) == (
        "amount",
        (4, 7),
        2,
        "warning",
    )
    assert str(warning) == (
        f"{path}, column 'amount', rows 4, 7: amount more than 1,000x the file's median "
        "positive amount (40.00; the largest is 300,000.00): a unit or typing error? (rows kept)"
    )
    assert loaded.frame.height == 10 and loaded.frame["amount"].max() == 300_000.0
    staging = tmp_path / "staging"
    staging.mkdir()
    staged = stage_events(path, now=NOW, folder=staging)
    assert staged.warnings == loaded.warnings and staged.height == 10
    orders = stage_orders(path, now=NOW, folder=staging)
    assert orders.warnings == loaded.warnings and orders.height == 10


def test_large_amounts_of_a_keyed_table_are_listed_by_key() -> None:
    """A database table (validated with its key) names the rows by their key values and says
    the table's (or the query's) median; a file of ordinary amounts, or without any positive
    amount, has no such warning."""
    rows = {
        "event_id": [11, 12, 13, 14],
        "customer_id": ["a", "b", "c", "d"],
        "ts": ["2024-01-01"] * 4,
        "event_type": ["order"] * 4,
        "amount": [5.0, 7.0, 90_000.0, 6.0],
        "quantity": [1.0] * 4,
    }
    loaded = validate_events(pl.DataFrame(rows), now=NOW, file="events", key=["event_id"])
    [warning] = loaded.warnings
    assert (warning.key, warning.keys, warning.rows_text()) == ("event_id", ("13",), "event_id 13")
    assert "1,000x the table's median positive amount (6.50; the largest is 90,000.00)" in (
        warning.message
    )
    query = validate_events(pl.DataFrame(rows), now=NOW, file="q", key=["event_id"], noun="query")
    [of_query] = query.warnings
    assert "1,000x the query's median positive amount (6.50; " in of_query.message
    ordinary = pl.DataFrame(rows).with_columns(amount=pl.Series([5.0, 7.0, 5_000.0, 0.0]))
    assert validate_events(ordinary, now=NOW, file="events", key=["event_id"]).warnings == ()
    free = pl.DataFrame(rows).with_columns(amount=pl.lit(0.0))
    assert validate_events(free, now=NOW, file="events", key=["event_id"]).warnings == ()


def test_rows_with_unreadable_timestamps_are_no_exact_duplicates(tmp_path: Path) -> None:
    """heavy28: day-first timestamps (22/03/2025 21:17) are unreadable and null once typed, so
    rows differing only there were also warned of as exact duplicates of each other (2,266 of
    3,000 rows of one file); only the unreadable timestamps are reported, by every reader."""
    path = write_csv(
        tmp_path / "dayfirst.csv",
        HEADER,
        "c1,22/03/2024 21:17,visit,web,,,,",
        "c1,23/03/2024 09:05,visit,web,,,,",
        "c1,24/03/2024 10:00,visit,web,,,,",
        "c2,2024-01-01,visit,web,,,,",
        "c2,2024-01-01,visit,web,,,,",  # row 5: a true copy, still warned of
    )
    for read in (
        lambda: load_events(path, now=NOW),
        lambda: stage_events(path, now=NOW, folder=tmp_path),
        lambda: stage_orders(path, now=NOW, folder=tmp_path),
    ):
        with pytest.raises(EventsValidationError) as info:
            read()
        assert [(p.column, p.rows) for p in info.value.errors] == [("ts", (1, 2, 3))]
        [warning] = [p for p in info.value.problems if p.severity == "warning"]
        assert warning.rows == (5,) and warning.message.startswith("exact duplicate")
