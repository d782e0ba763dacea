"""The audit log's chain, ``guanxi audit verify``, the recovery of a dead writer's part."""

from __future__ import annotations

import errno
import io
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import serving.audit as audit_module
from pipelines.cli import _register, app
from serving.audit import (
    AuditLog,
    hash_customer_id,
    host_id,
    key_fingerprint,
    recover,
    verify_part,
)

KEY = b"k" * 32
KEY_LABEL = audit_module._KEY_LABEL
FP = "0123456789abcdef"


def _served(n: int, prefix: str = "c") -> list[tuple[str, str, str, float]]:
    return [(f"{prefix}{i}", "churn", "1", 0.5) for i in range(n)]


def _log(home: Path, requests: int = 4, per_request: int = 3) -> Path:
    log = AuditLog(home, KEY)
    for n in range(requests):
        log.record(f"r{n}", "scorer", _served(per_request), key_fingerprint=FP)
    log.close()
    [part] = (home / "audit").glob("part-*.jsonl")
    return part


def _verify(*args: str, key: str = KEY.decode()) -> tuple[int, str]:
    os.environ["GUANXI_AUDIT_KEY"] = key
    from serving.settings import get_settings

    get_settings.cache_clear()
    try:
        _register("audit")
        result = CliRunner().invoke(app, ["audit", "verify", *args])
    finally:
        del os.environ["GUANXI_AUDIT_KEY"]
        get_settings.cache_clear()
    return result.exit_code, result.output


def test_lines_chain_and_verify_passes(tmp_path: Path) -> None:
    part = _log(tmp_path)
    lines = [json.loads(x) for x in part.read_text().splitlines()]
    assert len(lines) == 12 and len({x["mac"] for x in lines}) == 12
    assert [(x["item"], x["items"]) for x in lines[:3]] == [(1, 3), (2, 3), (3, 3)]
    assert verify_part(part, KEY) == (12, None)
    assert f"{host_id()}-{os.getpid()}-" in part.name  # the writer id names the host
    code, out = _verify(str(tmp_path / "audit"))
    assert code == 0 and "ok" in out and "12 lines" in out
    assert verify_part(part, b"another key" * 3)[1] is not None


def test_verify_says_a_part_of_one_line_in_the_singular(tmp_path: Path) -> None:
    """walk28: a part of one request of one customer was said "(1 lines)"."""
    _log(tmp_path, requests=1, per_request=1)
    code, out = _verify(str(tmp_path / "audit"))
    assert code == 0 and out.rstrip().endswith("(1 line)"), out


def test_verify_with_another_key_says_the_key_is_likely_wrong(tmp_path: Path) -> None:
    # every part broke at line 1 as "this line was changed...": the likely cause is the key
    _log(tmp_path)
    code, out = _verify(str(tmp_path / "audit"), key="another key, 32 characters long!")
    assert code == 1 and "1 of 1 part files broken" in out
    assert "GUANXI_AUDIT_KEY is likely not the key the service wrote the log with" in " ".join(
        out.split()
    )
    code, out = _verify(str(tmp_path / "audit"))
    assert code == 0 and "likely" not in out


def test_verify_names_the_parts_of_another_key_beside_intact_ones(tmp_path: Path) -> None:
    # a --dev run after a keyed one (or two --dev runs) leaves parts of two keys in one folder:
    # the other key's parts read "this line was changed", and no word said the key was the cause
    first = _log(tmp_path)
    other = AuditLog(tmp_path, b"o" * 32)
    other.record("r9", "scorer", _served(2, prefix="d"), key_fingerprint=FP)
    other.close()
    [second] = set((tmp_path / "audit").glob("part-*.jsonl")) - {first}
    code, out = _verify(str(tmp_path / "audit"))
    said = " ".join(out.split())
    assert code == 1 and "1 of 2 part files broken" in said and "every part" not in said
    assert (
        "1 of them breaks at the first line: likely written with another GUANXI_AUDIT_KEY" in said
    )
    # the key before a rotation is one such key, and the parts are verified by naming them
    # (before: only a --dev run's key was said, and not how to verify its parts)
    assert "the key before a rotation" in said
    assert f"(GUANXI_AUDIT_KEY=... guanxi audit verify PATH ...): {second.name}" in said
    code, out = _verify(str(second), key="o" * 32)
    assert code == 0 and "ok" in out
    # moved to a folder of its own (as the README's rotation says), the check passes again
    kept = tmp_path / "audit" / "before-rotation"
    kept.mkdir()
    for path in (tmp_path / "audit").glob(f"{second.stem}.*"):
        path.rename(kept / path.name)
    code, out = _verify(str(tmp_path / "audit"))
    assert code == 0 and out.count("ok") == 1 and "BROKEN" not in out, out


def test_verify_finds_a_flipped_byte(tmp_path: Path) -> None:
    part = _log(tmp_path)
    data = bytearray(part.read_bytes())
    line5 = sum(len(x) for x in bytes(data).splitlines(keepends=True)[:4])
    at = data.index(b'"score":0.5', line5) + len('"score":0.')
    data[at] = ord("9")  # 0.5 -> 0.9 on line 5
    part.write_bytes(bytes(data))
    _, problem = verify_part(part, KEY)
    assert problem is not None and problem.line == 5 and "mac does not match" in problem.reason
    code, out = _verify(str(part))
    assert code == 1 and "BROKEN" in out and "line 5" in out


def test_verify_finds_a_deleted_line(tmp_path: Path) -> None:
    part = _log(tmp_path)
    lines = part.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:6] + lines[7:]))
    _, problem = verify_part(part, KEY)
    assert problem is not None and problem.line == 7


def test_verify_finds_a_truncated_tail(tmp_path: Path) -> None:
    part = _log(tmp_path)
    data = part.read_bytes()
    part.write_bytes(data[:-40])  # cut inside the last line
    _, problem = verify_part(part, KEY)
    assert problem is not None and problem.line == 12 and "no end" in problem.reason
    lines = data.splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:-3]))  # the whole last request gone, at a line boundary
    _, problem = verify_part(part, KEY)
    assert (
        problem is not None and "truncated tail" in problem.reason and "12 lines" in problem.reason
    )


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_a_crafted_pending_never_cuts_recorded_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    part = _log(tmp_path)
    before = part.read_bytes()
    audit = tmp_path / "audit"
    dead = f"part-20260101-{host_id()}-{_dead_pid()}-0123abcd"
    (audit / f"{dead}.jsonl").write_bytes(before)  # a copy under a dead writer's name
    (audit / f"{dead}.pending").write_text("0")
    (audit / "part-2026-x-notapid.pending").write_text("0")  # not a writer's name
    (audit / "part-20260101-1234.pending").write_text("12")  # the old format, no host
    other = f"part-20260101-another.host-{os.getpid() + 1}-0123abce"
    (audit / f"{other}.jsonl").write_bytes(before[:-10])
    (audit / f"{other}.pending").write_text("0")  # another host's writer: not ours to judge
    with caplog.at_level(logging.WARNING, logger="serving.audit"):
        recover(audit)
        AuditLog(tmp_path, KEY)  # what a restarted service does first: never fatal
    assert (audit / f"{dead}.jsonl").read_bytes() == before  # whole requests are kept
    assert not (audit / f"{dead}.pending").exists()
    assert (audit / f"{other}.jsonl").read_bytes() == before[:-10]
    assert (audit / f"{other}.pending").exists()
    skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert any("part-2026-x-notapid.pending" in m for m in skipped)
    assert any("part-20260101-1234.pending" in m for m in skipped)


def test_a_dead_writers_unfinished_request_is_cut_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    part = _log(tmp_path, requests=2)
    whole = part.read_bytes()
    audit = tmp_path / "audit"
    dead = f"part-20260101-{host_id()}-{_dead_pid()}-0123abcd"
    unfinished = _log(tmp_path / "other", requests=1, per_request=5).read_bytes()[:-100]
    (audit / f"{dead}.jsonl").write_bytes(whole + unfinished)
    (audit / f"{dead}.pending").write_text("")
    with caplog.at_level(logging.WARNING, logger="serving.audit"):
        recover(audit)
    assert (audit / f"{dead}.jsonl").read_bytes() == whole
    [message] = [r.getMessage() for r in caplog.records if "cut" in r.getMessage()]
    assert f"from {len(whole) + len(unfinished)} to {len(whole)} bytes" in message
    assert f"{len(unfinished)} bytes of an unfinished request" in message
    head = json.loads((audit / f"{dead}.head").read_text())
    assert head["bytes"] == len(whole) and head["lines"] == 6


def test_background_fsync_writes_the_head(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, KEY, flush_seconds=0.01)
    log.record("r0", "scorer", _served(2), key_fingerprint=FP)
    [part] = (tmp_path / "audit").glob("part-*.jsonl")
    assert part.with_suffix(".pending").exists()  # a live writer announces itself
    log.flush()
    assert json.loads(part.with_suffix(".head").read_text())["lines"] == 2
    log.close()
    assert not part.with_suffix(".pending").exists()
    assert verify_part(part, KEY) == (2, None)


# what the writer leaves when a step fails half way (drift24)


def test_a_write_that_fails_half_way_is_cut_and_the_chain_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk wrote part of a request's lines: every later line of the part followed the
    stray bytes, and the part failed verification from there on."""
    log = AuditLog(tmp_path, KEY)
    log.record("r0", "scorer", _served(2), key_fingerprint=FP)
    real = audit_module._write

    def half(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(audit_module, "_write", half)
    with pytest.raises(OSError, match="No space left"):
        log.record(
            "r1", "scorer", _served(3), key_fingerprint=FP
        )  # the request fails: nothing served unaudited
    monkeypatch.setattr(audit_module, "_write", real)
    log.record("r2", "scorer", _served(2), key_fingerprint=FP)
    log.close()
    [part] = (tmp_path / "audit").glob("part-*.jsonl")
    assert verify_part(part, KEY) == (4, None)
    assert [json.loads(x)["request_id"] for x in part.read_text().splitlines()] == ["r0"] * 2 + [
        "r2"
    ] * 2


class _Ticks:
    """An event whose wait says "not closed" a number of times, then "closed"."""

    def __init__(self, ticks: int) -> None:
        self.ticks = ticks

    def wait(self, timeout: float | None = None) -> bool:
        self.ticks -= 1
        return self.ticks < 0


def test_a_failing_head_does_not_stop_the_background_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The first OSError of the background flush ended its thread: nothing was fsynced again
    until shutdown, without a word."""
    log = AuditLog(tmp_path, KEY, flush_seconds=3600)  # its own thread waits, the test flushes
    log.record("r0", "scorer", _served(2), key_fingerprint=FP)
    [part] = (tmp_path / "audit").glob("part-*.jsonl")
    real, failures = audit_module._write_head, [OSError(errno.ENOSPC, "No space left on device")]

    def head(*args: Any) -> None:
        if failures:
            raise failures.pop()
        real(*args)

    monkeypatch.setattr(audit_module, "_write_head", head)
    closed, log._closed = log._closed, _Ticks(2)  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, logger="serving.audit"):
        log._flush_loop()  # two rounds: the first fails, the second writes the head
    log._closed = closed
    assert "audit: fsync or head failed; trying again" in caplog.text
    assert json.loads(part.with_suffix(".head").read_text())["lines"] == 2
    log.close()
    assert verify_part(part, KEY) == (2, None)


def test_a_part_that_fails_to_open_at_midnight_leaves_the_old_one_working(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old part was retired before the new one opened: the next flush closed its file while
    it was still the current part, and the next request wrote to a closed (or reused) fd; the
    new part's .pending stayed, naming a part that never existed."""
    log = AuditLog(tmp_path, KEY)
    log.record("r0", "scorer", _served(2), key_fingerprint=FP)
    [old] = (tmp_path / "audit").glob("part-*.jsonl")
    real = os.open

    def refused(path: Any, *args: Any) -> int:
        if str(path).endswith(".jsonl"):
            raise OSError(errno.EMFILE, "Too many open files")
        return real(path, *args)

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(OSError, match="Too many open files"):
        log._open(datetime.now(UTC) + timedelta(days=1))
    monkeypatch.setattr(os, "open", real)
    assert sorted(p.name for p in old.parent.glob("*.pending")) == [f"{old.stem}.pending"]
    log.flush()
    log.record(
        "r1", "scorer", _served(2), key_fingerprint=FP
    )  # old code: OSError EBADF (or another file's fd)
    log.close()
    assert verify_part(old, KEY) == (4, None)


def test_verify_names_a_missing_path_or_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each was a FileNotFoundError traceback, with exit code 1 (a broken log's code)."""
    monkeypatch.setenv("COLUMNS", "400")  # long paths on one line
    code, out = _verify(str(tmp_path / "part-x.jsonl"))
    said = " ".join(out.split())
    assert code == 2 and f"no such file or folder: {tmp_path / 'part-x.jsonl'}" in said
    home = tmp_path / "not-the-home"
    monkeypatch.setenv("GUANXI_HOME", str(home))
    code, out = _verify()
    said = " ".join(out.split())
    assert code == 2 and f"no audit log at {home / 'audit'}: GUANXI_HOME is {home}" in said
    assert "`export GUANXI_HOME=...`" in said
    (tmp_path / "empty").mkdir()
    code, out = _verify(str(tmp_path / "empty"))
    assert code == 0 and f"no audit part files (part-*.jsonl) in {tmp_path / 'empty'}" in " ".join(
        out.split()
    )


def test_lines_written_before_the_key_fingerprint_still_verify(tmp_path: Path) -> None:
    """sec32: lines carry ``key_fingerprint`` now; a part written before (no such field) beside
    a part written after verifies as it did, so an auditor checks old and new days alike."""
    new = _log(tmp_path)
    assert all(json.loads(x)["key_fingerprint"] == FP for x in new.read_text().splitlines())
    old = tmp_path / "audit" / f"part-20261101-{host_id()}-1-0123abcd.jsonl"
    mac = audit_module._genesis(KEY, old.name)
    lines = []
    for item in (1, 2):
        fields = {"request_id": "r", "time": "2026-11-01T10:00:00.000000+00:00", "role": "scorer"}
        body = json.dumps(
            {**fields, "task": "churn", "model_version": "1", "customer_hash": "ab" * 32}
            | {"score": 0.5, "item": item, "items": 2},
            separators=(",", ":"),
        )[:-1].encode()
        mac = audit_module._chain(KEY, mac, body)
        lines.append(body + b',"mac":"' + mac + b'"}\n')
    old.write_bytes(b"".join(lines))
    assert verify_part(old, KEY) == (2, None)
    code, out = _verify(str(tmp_path / "audit"))
    assert code == 0 and out.count("ok") == 2, out


def test_a_key_fingerprint_is_keyed_by_the_audit_key(tmp_path: Path) -> None:
    """The fingerprint tells keys apart without revealing them: not a plain hash of the key, a
    customer hash of the same text, or the same under another audit key."""
    one, two = "reviewer-one-key-0123456789abcdef012345", "reviewer-two-key-0123456789abcdef01234"
    assert key_fingerprint(KEY, one) == key_fingerprint(KEY, one)
    assert key_fingerprint(KEY, one) != key_fingerprint(KEY, two)
    assert key_fingerprint(KEY, one) != key_fingerprint(b"o" * 32, one)
    assert key_fingerprint(KEY, one) not in hash_customer_id(KEY, one)
    assert key_fingerprint(KEY, one) == AuditLog(tmp_path, KEY).fingerprint(one)


def test_a_configured_keys_fingerprint_is_computed_once_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """web32c: an admitted request hashed its key twice for the audit line; a configured key's
    fingerprint is now computed at start (the same one), and a key only a caller sent is
    computed each time and never remembered."""
    one, other = "reviewer-one-key-0123456789abcdef012345", "unknown-key-0123456789abcdef0123456789"
    log = AuditLog(tmp_path, KEY, api_keys=[one])
    hashed: list[bytes] = []
    real = audit_module.hmac.new

    def counted(key: bytes, msg: bytes, digestmod: Any) -> Any:
        hashed.append(msg)
        return real(key, msg, digestmod)

    monkeypatch.setattr(audit_module.hmac, "new", counted)
    assert log.fingerprint(one) == log.fingerprint(one) == key_fingerprint(KEY, one)
    assert hashed == [KEY_LABEL, one.encode()]  # key_fingerprint's alone
    hashed.clear()
    assert log.fingerprint(other) == log.fingerprint(other) == key_fingerprint(KEY, other)
    assert hashed == [other.encode(), other.encode(), KEY_LABEL, other.encode()]


def test_verify_keys_prints_each_keys_fingerprint_never_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sec32: ``guanxi audit verify --keys`` gives the auditor what to match each line's
    ``key_fingerprint`` with: each configured key's, with its role, never the key."""
    one, two = "reviewer-one-key-0123456789abcdef012345", "scorer-two-key-0123456789abcdef0123456"
    _log(tmp_path)
    monkeypatch.setenv("GUANXI_API_KEYS", f"{one}:reviewer,{two}:scorer")
    code, out = _verify("--keys", str(tmp_path / "audit"))
    assert code == 0, out
    assert out.splitlines()[0].split()[:3] == ["key", "role", "key_fingerprint"]
    rows = [line.split() for line in out.splitlines()[1:3]]
    assert rows == [
        ["1", "reviewer", key_fingerprint(KEY, one)],
        ["2", "scorer", key_fingerprint(KEY, two)],
    ]
    assert one not in out and two not in out and "ok" in out
    monkeypatch.setenv("GUANXI_API_KEYS", "")
    code, out = _verify("--keys", str(tmp_path / "audit"))
    assert code == 2 and "GUANXI_API_KEYS is not set" in out


def test_verify_keys_numbers_each_key_as_the_services_messages_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """web32c: the service names a GUANXI_API_KEYS item by its position, empty items counted
    ("item 3 repeats an earlier key"); ``--keys`` numbered the keys 1, 2, ... so a key after an
    empty item had another number there. Both count the items now."""
    one, two = "reviewer-one-key-0123456789abcdef012345", "scorer-two-key-0123456789abcdef0123456"
    _log(tmp_path)
    monkeypatch.setenv("GUANXI_API_KEYS", f",{one}:reviewer, ,{two}:scorer,")
    code, out = _verify("--keys", str(tmp_path / "audit"))
    assert code == 0, out
    rows = [line.split() for line in out.splitlines()[1:3]]
    assert rows == [
        ["2", "reviewer", key_fingerprint(KEY, one)],
        ["4", "scorer", key_fingerprint(KEY, two)],
    ]


def test_verify_checks_one_day_named_by_a_pattern(tmp_path: Path) -> None:
    """sec32: an auditor checking one day names its files, ``part-20261204-*``, which holds each
    part's ``.head`` (and a live writer's ``.pending``) too: each was read as a part and reported
    BROKEN at line 1 ("truncated: the line has no end"), exit code 1, on an intact log."""
    part = _log(tmp_path)
    part.with_suffix(".pending").write_text("a live writer")
    day = sorted((tmp_path / "audit").glob(f"{part.name[:13]}-*"))  # part-YYYYMMDD-*
    assert {p.suffix for p in day} == {".jsonl", ".head", ".pending"}
    code, out = _verify(*map(str, day))
    assert code == 0 and "BROKEN" not in out, out
    assert out.count("ok") == 1 and "(12 lines)" in out  # the day's one part, once


def test_verify_says_each_part_on_one_line_however_long_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sec32: at 80 columns (a pipe, a cron mail) a long path wrapped the result, so
    ``grep BROKEN`` gave "line 12:" and lost "truncated: the line has no end"."""
    monkeypatch.setenv("COLUMNS", "80")
    part = _log(tmp_path / ("deep-folder-name-" * 3))
    code, out = _verify(str(part))
    assert code == 0 and f"ok      {part} (12 lines)" in out.splitlines(), out
    part.write_bytes(part.read_bytes()[:-40])
    code, out = _verify(str(part))
    [broken] = [line for line in out.splitlines() if "BROKEN" in line]
    assert code == 1 and broken == f"BROKEN  {part} line 12: truncated: the line has no end"


def test_verify_says_a_renamed_copy_is_not_under_its_parts_name(tmp_path: Path) -> None:
    """sec32: an auditor's copy renamed on the way (a download's ``(1)``) broke at line 1 as
    "this line was changed...", and the command blamed GUANXI_AUDIT_KEY; the chain starts from
    the part's name, and that is what is said now."""
    part = _log(tmp_path)
    copy = tmp_path / f"{part.stem}(1).jsonl"
    copy.write_bytes(part.read_bytes())
    code, out = _verify(str(copy))
    said = " ".join(out.split())
    assert code == 1 and f"BROKEN {copy} line 1: the file's name is not a part's" in said, said
    assert "verify it under that name" in said and "GUANXI_AUDIT_KEY is likely not" not in said
    # a part under its own name, with another key, is still said to be the key's
    code, out = _verify(str(part), key="o" * 32)
    assert code == 1 and "GUANXI_AUDIT_KEY is likely not" in " ".join(out.split())


def test_verify_reads_a_running_writers_part_as_it_is_being_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sec32: an auditor checking today's log while the service runs got BROKEN for an intact
    part: the head was read after the lines, so a flush in between counted lines the read had
    not seen ("truncated tail: the writer fsynced 15 lines, the file holds 12"), and a large
    request seen half written was "truncated: the line has no end"."""
    log = AuditLog(tmp_path, KEY)
    for n in range(4):
        log.record(f"r{n}", "scorer", _served(3), key_fingerprint=FP)
    log.flush()  # the writer runs on: its .pending stays
    [part] = (tmp_path / "audit").glob("part-*.jsonl")
    real_open = Path.open

    def open_then_write(self: Path, *args: Any, **kwargs: Any) -> Any:
        file = real_open(self, *args, **kwargs)
        if self == part and "b" in (args[0] if args else kwargs.get("mode", "")):
            seen = io.BytesIO(file.read())  # what the reader sees, then the writer goes on
            file.close()
            monkeypatch.setattr(Path, "open", real_open)
            log.record("r4", "scorer", _served(3), key_fingerprint=FP)
            log.flush()
            return seen
        return file

    monkeypatch.setattr(Path, "open", open_then_write)
    assert verify_part(part, KEY) == (12, None)
    assert verify_part(part, KEY) == (15, None)
    data = part.read_bytes()
    part.write_bytes(data + data.splitlines(keepends=True)[0][:50])  # a request half written
    assert verify_part(part, KEY) == (15, None)
    log.close()  # sealed: the same half line is a cut
    part.write_bytes(data + data.splitlines(keepends=True)[0][:50])
    _, problem = verify_part(part, KEY)
    assert problem == audit_module.Break(16, "truncated: the line has no end")


def test_a_tail_cut_with_its_head_rewritten_is_not_found(tmp_path: Path) -> None:
    """What SECURITY.md does not promise, as it says it: SECURITY.md said a truncation to an
    earlier consistent state needed the audit key (or a whole part deleted), but the head is not
    signed, so whoever may write the folder cuts whole requests and rewrites the head, no key."""
    part = _log(tmp_path)
    lines = part.read_bytes().splitlines(keepends=True)[:9]  # three of four requests
    part.write_bytes(b"".join(lines))
    mac = json.loads(lines[-1])["mac"]
    part.with_suffix(".head").write_text(json.dumps({"bytes": 0, "lines": 9, "mac": mac}))
    assert verify_part(part, KEY) == (9, None)
    security = (Path(__file__).parents[2] / "SECURITY.md").read_text()
    assert "by anyone who may write the audit folder, key or no key" in " ".join(security.split())
