"""The registry looks the model pages share (serving.lifecycle.RunningLooks, read_in_time).

Every wait here is bounded (events waited with a timeout, threads joined with one): the looks
once deadlocked on a lock taken in their own callback, and a hang must fail, not stall the run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import pytest
from mlflow.exceptions import MlflowException

from models.versions import ModelFilesMissingError
from serving import lifecycle
from serving.lifecycle import Preparing, RunningLooks, asking_registry, read_in_time

WAIT = 10.0
"""Seconds any event or thread of these tests is waited for at most."""


class CountedLooks(RunningLooks):
    """Running looks that tell when a number of views have asked for one."""

    def __init__(self, views: int) -> None:
        super().__init__()
        self.asked: list[Hashable] = []
        self.all_asked = threading.Event()
        self._views = views

    def start(self, key: Hashable, look: Callable[[], Any]) -> Any:
        running = super().start(key, look)
        self.asked.append(key)
        if len(self.asked) >= self._views:
            self.all_asked.set()
        return running


def test_a_look_deadline_follows_when_it_was_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A look kept when it was asked and its deadline, each stored, the one derived from the other
    once: moving one left the other where it was. The deadline is derived from when it was asked,
    PENDING_TIMEOUT seconds after it, so a look asked earlier is out of time earlier."""
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 2.0)
    before = time.monotonic()
    look = lifecycle._Look.start(lambda: "answered")
    assert look.future.result(WAIT) == "answered"
    assert before <= look.started <= time.monotonic()
    assert look.deadline == look.started + 2.0
    look.started -= 5.0  # asked 5 s earlier: out of time 3 s ago
    assert look.deadline == look.started + 2.0


def test_a_view_after_a_look_deadline_starts_its_own(
    monkeypatch: pytest.MonkeyPatch, released: threading.Event
) -> None:
    """A view arriving after the running look's deadline waited 0 s on it and said "registry not
    read" until that look ended (62 s with the registry hung), though the registry may answer
    at once. It starts a look of its own and waits for it; a view within the deadline waits on
    the running one."""
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 4.0)
    looks = RunningLooks()
    calls: list[str] = []

    def hung() -> str:
        calls.append("hung")
        released.wait(WAIT)
        raise MlflowException("registry down")

    first = looks.start("churn", hung)
    assert looks.start("churn", lambda: "never started") is first  # within its deadline
    first.started = time.monotonic() - 4.0 - 0.01  # the running look is out of time
    started = time.monotonic()
    assert read_in_time(lambda: "answered", "for a test", looks=looks, key="churn") == "answered"
    assert time.monotonic() - started < WAIT
    assert calls == ["hung"]


def test_a_view_joining_a_slow_look_late_waits_on_it_instead_of_starting_another(
    monkeypatch: pytest.MonkeyPatch, released: threading.Event
) -> None:
    """A view joining with less than half the timeout left started a second copy of a look that
    was slow but working: a view at 1.1 s of a 1.5 s look (timeout 2 s) started look #2 and
    answered at 2.6 s (with the registry hung, a look every 1 s per key). It waits on the running
    look for at least half the timeout (here 1 s, 0.9 s being left) and answers when that look
    does, at 1.5 s: one look."""
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 2.0)
    looks = CountedLooks(views=2)
    calls: list[str] = []

    def slow() -> str:
        calls.append("slow")
        released.wait(WAIT)
        return "answered by the first look"

    first = looks.start("churn", slow)
    first.started = time.monotonic() - 1.1  # 1.1 s of its 2 s gone: 0.9 s left
    got: list[str | None] = []
    view = threading.Thread(
        target=lambda: got.append(
            read_in_time(lambda: "a second look", "for a test", looks=looks, key="churn")
        )
    )
    view.start()
    assert looks.all_asked.wait(WAIT)  # the second view has joined (or started a look)
    released.set()  # the first look answers (at 1.5 s)
    view.join(WAIT)
    assert not view.is_alive()
    assert got == ["answered by the first look"]
    assert calls == ["slow"]  # one look started


def test_a_view_joining_with_little_left_still_waits_half_the_timeout(
    monkeypatch: pytest.MonkeyPatch, released: threading.Event
) -> None:
    """A view joining a look 0.2 s before its deadline waited 0.2 s and said "registry not
    read". It waits at least JOIN_SHARE of the timeout on the running look, starting none."""
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 2.0)
    looks = RunningLooks()
    calls: list[str] = []

    def hung() -> str:
        calls.append("hung")
        released.wait(WAIT)
        raise MlflowException("registry down")

    first = looks.start("churn", hung)
    # 0.2 s left: a margin for a busy machine (a view paused past the deadline starts a look of
    # its own), still well under the 1 s a joining view waits at least
    first.started = time.monotonic() - 1.8  # 0.2 s left of its 2 s
    started = time.monotonic()
    assert read_in_time(lambda: "a second look", "for a test", looks=looks, key="churn") is None
    waited = time.monotonic() - started
    assert lifecycle.JOIN_SHARE * 2.0 <= waited < WAIT
    assert calls == ["hung"]


def test_callers_of_one_failed_look_get_exceptions_of_their_own(
    monkeypatch: pytest.MonkeyPatch, released: threading.Event
) -> None:
    """Views waiting on one look re-raised its one exception object in each of their threads, so
    each raise chained its frames onto the traceback the others raise and log. Each caller gets
    an exception of its own, of the look's type and message, caused by the look's."""
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 5.0)
    looks = CountedLooks(views=2)
    calls: list[str] = []

    def broken() -> str:
        calls.append("look")
        released.wait(WAIT)
        raise KeyError("champion")

    got: dict[str, BaseException] = {}

    def view(name: str) -> None:
        try:
            read_in_time(broken, "for a test", errors=(MlflowException,), looks=looks, key="k")
        except BaseException as exc:  # kept for the test thread to compare
            got[name] = exc

    threads = [threading.Thread(target=view, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    assert looks.all_asked.wait(WAIT)  # both views joined the look before it failed
    released.set()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads)
    assert calls == ["look"]  # one look for both views
    a, b = got["a"], got["b"]
    assert a is not b
    assert type(a) is type(b) is KeyError and a.args == b.args == ("champion",)
    assert a.__cause__ is b.__cause__  # the look's own, raised in neither view
    assert isinstance(a.__cause__, KeyError) and a.__cause__ is not a


def test_a_failure_whose_init_formats_its_argument_keeps_its_type_and_message() -> None:
    """Each caller's copy was made by calling the exception's __init__ again with its args: an
    __init__ that formats its argument formatted the formatted message ("task task churn is odd
    is odd"), or, taking other arguments than its args, fell back to a RuntimeError. The copy
    keeps the type, the args, the message and the attributes, without calling __init__."""

    class OddError(Exception):
        def __init__(self, task: str, version: int = 1) -> None:
            self.task = task
            super().__init__(f"task {task} v{version} is odd")

    def odd() -> str:
        raise OddError("churn", 3)

    with pytest.raises(OddError) as e:
        read_in_time(odd, "for a test", errors=(MlflowException,))
    assert str(e.value) == "task churn v3 is odd"
    assert e.value.args == ("task churn v3 is odd",) and e.value.task == "churn"
    assert isinstance(e.value.__cause__, OddError) and e.value.__cause__ is not e.value


def test_a_failure_copy_has_notes_of_its_own() -> None:
    """The copies shared the look's __notes__ list: a note one caller added was in every other
    caller's traceback."""
    look_failure = KeyError("champion")
    look_failure.add_note("from the look")

    def broken() -> str:
        raise look_failure

    with pytest.raises(KeyError) as e:
        read_in_time(broken, "for a test", errors=(MlflowException,))
    assert e.value.__notes__ == ["from the look"]
    e.value.add_note("this caller's")
    assert look_failure.__notes__ == ["from the look"]


def test_a_model_files_missing_failure_keeps_its_type() -> None:
    """ModelFilesMissingError takes (task, version, where) and formats them: its copy was a
    RuntimeError, which its readers (``missing``, the not-served notices) do not know."""
    gone = ModelFilesMissingError("churn", "3", "/srv/mlruns", missing="model.ubj")

    def broken() -> str:
        raise gone

    with pytest.raises(ModelFilesMissingError) as e:
        read_in_time(broken, "for a test", errors=(MlflowException,))
    assert e.value is not gone and str(e.value) == str(gone)
    assert (e.value.task, e.value.version, e.value.missing) == ("churn", "3", "model.ubj")
    assert lifecycle.missing(e.value) == lifecycle.missing(gone)


def test_a_failure_whose_copy_says_otherwise_is_said_by_its_name() -> None:
    """An exception its copy does not say the same (its message changes each time it is read)
    is said by a RuntimeError naming its type and message, caused by it."""

    class CountingError(Exception):
        reads = 0

        def __str__(self) -> str:
            type(self).reads += 1
            return f"read {type(self).reads} times"

    def odd() -> str:
        raise CountingError()

    with pytest.raises(
        RuntimeError, match=r"^registry look failed: CountingError: read \d times$"
    ) as e:
        read_in_time(odd, "for a test", errors=(MlflowException,))
    assert isinstance(e.value.__cause__, CountingError)


def test_a_failure_with_slots_keeps_its_type_and_message() -> None:
    """Brief serving47 item 4: the copy did not copy ``__slots__``, so an exception whose
    message reads a slot was said by a RuntimeError, its type lost to the caller."""

    class SlotError(Exception):
        __slots__ = ("__reason", "code")

        def __init__(self, reason: str, code: int) -> None:
            super().__init__()
            self.__reason = reason
            self.code = code

        def __str__(self) -> str:
            return f"odd: {self.__reason}"

    def odd() -> str:
        raise SlotError("no alias", 3)

    with pytest.raises(SlotError, match=r"^odd: no alias$") as e:
        read_in_time(odd, "for a test", errors=(MlflowException,))
    assert e.value.code == 3 and isinstance(e.value.__cause__, SlotError)
    assert e.value is not e.value.__cause__


@pytest.mark.parametrize(
    "failure",
    [
        PermissionError(13, "Permission denied", "/srv/guanxi/as_of.parquet"),
        OSError(2, "No such file or directory", "/srv/a", None, "/srv/b"),  # FileNotFoundError
        OSError(5, "Input/output error"),
    ],
)
def test_an_os_error_copy_names_its_file(failure: OSError) -> None:
    """Brief serving47 item 4: the copy a waiter raises lost OSError's errno, filename and
    filename2 (not in its args), so it was a RuntimeError; it keeps its type and names the file,
    as the look's own says it."""

    def unreadable() -> str:
        raise failure

    with pytest.raises(OSError) as e:
        read_in_time(unreadable, "for a test", errors=(MlflowException,))
    assert type(e.value) is type(failure) and e.value is not failure
    assert str(e.value) == str(failure)
    got = (e.value.errno, e.value.strerror, e.value.filename, e.value.filename2)
    assert got == (failure.errno, failure.strerror, failure.filename, failure.filename2)
    assert e.value.__cause__ is failure


def test_a_look_ended_by_system_exit_is_a_runtime_error_in_the_caller() -> None:
    """A look thread ended by SystemExit (or KeyboardInterrupt) had that copied into the request
    thread that waited on it, where it stops more than the request. The caller raises a
    RuntimeError saying it, from it."""

    def leaving() -> str:
        raise SystemExit(3)

    with pytest.raises(RuntimeError, match=r"^registry look failed: SystemExit: 3$") as e:
        read_in_time(leaving, "for a test", errors=(MlflowException,))
    assert isinstance(e.value.__cause__, SystemExit)


def test_a_look_ended_by_system_exit_is_not_read_where_every_failure_is(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Where every failure of the look is "registry not read" (errors=(Exception,), the value
    pages' and reload_pending's), one ended by SystemExit is too: None and a log line, not a 500."""

    def leaving() -> str:
        raise SystemExit(3)

    with caplog.at_level(logging.INFO, logger=lifecycle.logger.name):
        assert read_in_time(leaving, "for a test", errors=(Exception,)) is None
    assert "registry not read for a test: RuntimeError: registry look failed: SystemExit: 3" in (
        caplog.text
    )


def test_a_staged_look_failing_after_it_was_said_preparing_is_not_blamed_on_the_registry(
    monkeypatch: pytest.MonkeyPatch, released: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    """Review48s L4: a staged look said still being prepared (its registry calls answered, its
    own work late) that then failed was logged "registry not read ...; answered late": the
    registry had answered, the failure was the server's own. It is logged as not prepared,
    failed late."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 0.2)

    def look() -> str:
        with asking_registry():
            pass  # the registry answered at once
        released.wait(WAIT)  # the server's own work, late
        raise RuntimeError("card build failed")

    with pytest.raises(Preparing):
        read_in_time(look, "for a test", staged=True, level=logging.WARNING)
    released.set()
    deadline = time.monotonic() + WAIT
    while len(caplog.records) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "registry read but not prepared for a test: not done within 0.2 s"),
        (
            logging.WARNING,
            "registry read but not prepared for a test; failed late: RuntimeError: card build "
            "failed",
        ),
    ]


def test_a_staged_look_late_before_any_registry_answer_is_the_registry_s(
    monkeypatch: pytest.MonkeyPatch, released: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    """Review48s L1: a staged look was said still being prepared ("the registry answered") when
    late in no registry call, also before it had made one (its thread not scheduled yet under
    load): nothing had been asked. Only a look one of whose registry calls has ended is
    preparing; this one is said as a registry not read in time."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 0.2)

    def look() -> str:
        released.wait(WAIT)  # late before its first registry call
        with asking_registry():
            return "answered"

    assert read_in_time(look, "for a test", staged=True) is None
    assert [r.getMessage() for r in caplog.records] == [
        "registry not read for a test: no answer within 0.2 s"
    ]


def _late_lines(caplog: pytest.LogCaptureFixture, count: int) -> list[tuple[int, str]]:
    """The log lines once ``count`` are there (a late look logs from its own thread)."""
    deadline = time.monotonic() + WAIT
    while len(caplog.records) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return [(r.levelno, r.getMessage()) for r in caplog.records]


@pytest.mark.parametrize("staged", [False, True])
def test_a_look_that_answers_after_it_was_said_late_is_logged_once_with_how_late(
    monkeypatch: pytest.MonkeyPatch,
    released: threading.Event,
    caplog: pytest.LogCaptureFixture,
    staged: bool,
) -> None:
    """qa46 L3: a model page said the registry could not be read (no answer within 2 s); the
    look answered later, its cards served to the next views, and nothing was logged of it: an
    operator could not tell a slow registry from a down one. One INFO line says it answered
    late and in how long (at least the wait: 0.2 s here), at INFO whatever the page's level; a
    staged look said still being prepared says it was prepared late."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 0.2)

    def look() -> str:
        if staged:
            with asking_registry():
                pass  # the registry answered at once: the server's own work is late
        released.wait(WAIT)
        return "answered"

    if staged:
        with pytest.raises(Preparing):
            read_in_time(look, "for a test", staged=True, level=logging.WARNING)
    else:
        assert read_in_time(look, "for a test", level=logging.WARNING) is None
    time.sleep(0.3)  # answered 0.5 s or more after it was asked
    released.set()
    lines = _late_lines(caplog, 2)
    assert len(lines) == 2, lines
    first = (
        (logging.INFO, "registry read but not prepared for a test: not done within 0.2 s")
        if staged
        else (logging.WARNING, "registry not read for a test: no answer within 0.2 s")
    )
    assert lines[0] == first
    level, said = lines[1]
    late = "registry read and prepared late" if staged else "registry answered late"
    head, _, tail = said.partition(" for a test: ")
    assert (level, head) == (logging.INFO, late), said
    seconds, _, rest = tail.partition(" s ")
    assert 0.5 <= float(seconds) < WAIT and rest == "after it was asked", said
