"""Loading and swapping the state: start-up retries and reloads.

Start-up never waits for a load: the lifespan starts a background task that tries to load until
it succeeds (``/readyz`` answers 503 meanwhile), so an unreachable registry leaves the service
alive and retrying. Beside it, a thread warms up the explainer (:func:`models.treeshap.warm_up`:
TreeSHAP's kernels compiled, or loaded from numba's cache), and ``/readyz`` waits for that too, so
a load balancer sends the first explained request to a warm process; a request that comes earlier
and needs a kernel being compiled waits for that compilation instead of starting its own. A
failed warm-up is logged and the service gets ready without it (the first explained request then
compiles, as without a warm-up).

Every load builds a whole new :class:`~serving.state.ServingState` in a worker thread
(:func:`serving.loader.load_state`) and swaps it in by reference; a failed load leaves the old
state serving. A load leaves out a task whose champion's files are gone and serves the others
(that task's requests are a 503 saying what to do, :func:`not_served`); the task stays out until
the next load (``POST /v1/admin/reload``, the reload generation announced to the workers, a
restart): the server does not look for the files by itself. A reload that would leave out a
task the current state serves fails instead, and the current state keeps serving it. After a
swap the background explainer (:func:`serving.explaining.explain_in_background`) explains the
snapshot's customers ahead of requests and stores each task's score table once it is done.

With several workers (:mod:`serving.workers`) a reload reaches them all: the worker that received
the admin reload loads first, then writes the next reload generation (:func:`announce_reload`) and
waits for the others; each worker looks at the generation every ``GUANXI_RELOAD_POLL_SECONDS``
(before its first load succeeds too) and loads again when it has moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from concurrent.futures import Future
from functools import partial
from typing import Any, Final, Generic, NamedTuple, TypeVar

from fastapi import FastAPI
from mlflow.exceptions import MlflowException
from tenacity import retry, retry_if_result, wait_fixed

from features.store import SnapshotNotFoundError
from models import treeshap
from models.registry import CHAMPION, ModelNotFoundError
from models.versions import ModelFilesMissingError
from serving.explaining import explain_in_background
from serving.loader import RegistrySource, Source, load_state
from serving.settings import Settings
from serving.state import ServingState, StateHolder
from serving.workers import RunDir, WorkersLoaded

__all__ = [
    "JOIN_SHARE",
    "NOT_THERE_YET",
    "SAID_IN_FULL",
    "UNREACHED",
    "Preparing",
    "RunningLooks",
    "announce_reload",
    "asking_registry",
    "failed_why",
    "lifespan",
    "missing",
    "not_served_now",
    "pending_reloads",
    "prepare_loads",
    "read_in_time",
    "reload_state",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

NOT_THERE_YET: Final = (ModelNotFoundError, SnapshotNotFoundError)
"""Load failures of a store or registry not filled yet (no champion, no snapshot): logged with
their reason alone, which says what to run; any other failure is logged with its traceback."""

SAID_IN_FULL: Final = (*NOT_THERE_YET, ModelFilesMissingError)
"""Load failures whose reason says all there is (what is missing, where, what to run): logged
without a traceback, once, then again when it changes. A champion whose files are gone was
MLflow's "No such artifact: 'MLmodel'" and its traceback every retry, naming no task, version
or folder (qa49 M2)."""

UNREACHED: Final = (
    MlflowException,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    socket.herror,
    ssl.SSLError,
)
"""Load failures for want of the registry (hung, out of reach, refusing the connection) when not
:data:`SAID_IN_FULL`: a reload arriving while such a load runs and nothing serves answers with
its failure rather than asking the registry again (:func:`reload_state`). The registry's and the
network's alone: any ``OSError`` was, a local file the load could not read included, so a reload
meant to follow a fix answered with that failure; such a failure (named with its file,
:func:`_describe`) is not shared, the reload loads in turn. Left out, as MLflow raises none of
them on a load: ``requests.exceptions.RequestException`` and a raw ``OSError`` of
errno ENETUNREACH, EHOSTUNREACH or ENETDOWN (MLflow 3.17's ``http_request`` wraps every failure
of a request in an ``MlflowException``, and an artifact download's failure is wrapped alike), and
a cloud artifact store's own errors (botocore, Azure, GCS), which no ``OSError`` ever covered; a
load failing with one of them is not shared, so a reload waiting on it loads in turn (one load
more, nothing said wrong)."""


def missing(exc: BaseException) -> str | None:
    """Say what a store or registry not filled yet lacks and what to run, for a client to read.

    The exception's own message names paths and servers, so it goes to the log only; this
    sentence names neither.

    Parameters
    ----------
    exc : BaseException
        Why the last load failed.

    Returns
    -------
    str or None
        The sentence for a :data:`NOT_THERE_YET` failure (no champion, no snapshot) or a
        champion whose files are gone (its task and version, not the folder); None for any
        other failure, whose reason stays in the server log.
    """
    again = " The server loads it by itself once it is there; no restart is needed."
    if isinstance(exc, ModelNotFoundError):
        return (
            "No model is promoted to champion yet: build a snapshot with `guanxi features "
            "build`, train with `guanxi train` and promote with `guanxi promote` (`guanxi "
            "demo` does all of it on sample data)." + again
        )
    if isinstance(exc, ModelFilesMissingError):
        return _files_gone(exc) + "." + again
    if isinstance(exc, SnapshotNotFoundError):
        return (
            "The store holds no feature snapshot yet: build one with `guanxi features build`."
            + again
        )
    return None


def failed_why(exc: BaseException) -> str:
    """Say why a load failed in one line for a client: what failed and the exception's type.

    The exception's message names paths and servers, so it goes to the log only (as
    :func:`missing`'s); ``/readyz`` and the API's 503 give this line after "last load failed;
    retrying" (:func:`serving.deps.not_loaded`).

    Parameters
    ----------
    exc : BaseException
        Why the last load failed (not for what is missing: :func:`missing` says that).

    Returns
    -------
    str
        ``the model registry could not be read: <type>; the reason is in the server log`` for a
        registry failure (:data:`UNREACHED`), ``a local file could not be read: <type>; the
        server log names it`` for another ``OSError`` naming a file, else ``<type>; the reason
        is in the server log``.

    Notes
    -----
    Any ``OSError`` naming a file is said a local file's, also the rare ``FileNotFoundError``
    re-raised for a registered version's missing bundle file when its folder cannot be told
    (``model.ubj``, the registry's file): telling them apart needs the loader to raise another
    type, for a wording that says the same, that the server log names the file.
    """
    kind = type(exc).__name__
    if isinstance(exc, UNREACHED):
        return f"the model registry could not be read: {kind}; the reason is in the server log"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"a local file could not be read: {kind}; the server log names it"
    return f"{kind}; the reason is in the server log"


def _files_gone(exc: ModelFilesMissingError) -> str:
    """Say whose files are gone and what to do, naming the task and version, not the folder.

    The one sentence ``/readyz``, the 503s and ``not_served`` give (qa43 M2): `guanxi promote
    --task T` alone refuses while the lost version is still the champion, so it names a version
    to promote (``--version N``) or training again, the server log's words
    (:meth:`models.versions.ModelFilesMissingError.remedy`); for a server following another
    alias (``GUANXI_MODEL_ALIAS``, the one the version was loaded by) it names that alias and
    what moves it.
    """
    alias = exc.alias or CHAMPION
    return (
        f"the files of {exc.task} version {exc.version} (the {alias}) are missing where the "
        f"registry keeps them (the server log names the folder): {exc.remedy(alias)}"
    )


RELOAD: Final = "then reload (`POST /v1/admin/reload`, or restart the server)"
"""What brings back a task left out of a load: the server does not load it by itself."""


def not_served(task: str, exc: ModelFilesMissingError) -> str:
    """Say, for a client to read, why a task is left out of the load serving and what to do.

    A load leaves out a task whose champion's files are gone (:func:`serving.loader.load_state`)
    and serves the others; the task stays out until the next load (an admin reload, the reload
    generation announced to the workers, a restart), which the server does not do by itself.

    Parameters
    ----------
    task : str
        The task left out.
    exc : models.versions.ModelFilesMissingError
        Why: its version and folder (the folder stays in the server log).

    Returns
    -------
    str
        ``<task> is not served: the files of <task> version <v> (the champion) are missing ...:
        put them back there, or promote another version (...), or train again (...), then
        reload (...).``
    """
    return f"{task} is not served: {_files_gone(exc)}, {RELOAD}."


def not_served_now(state: ServingState) -> dict[str, str]:
    """Say, per task the load left out, why it is not served (``not_served`` of the API).

    Parameters
    ----------
    state : ServingState
        The state serving.

    Returns
    -------
    dict of str to str
        Task to :func:`not_served`'s sentence (the one ``/readyz`` gives); empty when every
        task serves.
    """
    return {task: not_served(task, exc) for task, exc in state.gone.items()}


PENDING_TIMEOUT: Final = 2.0
"""Seconds ``GET /v1/models`` waits for the registry's aliases before saying "not known"."""


async def pending_reloads(app: FastAPI, state: ServingState) -> dict[str, bool | None]:
    """Say, per loaded task, whether the registry now points the followed alias elsewhere.

    A model's ``aliases`` are as they were at load: after ``guanxi promote`` without a reload
    the old version still says ``champion`` (qa49 Low). This reads the alias the server
    follows (``settings.model_alias``) for ``GET /v1/models`` only (never on the scoring
    path), through :func:`_followed_now` run in a thread of the event loop's default executor,
    and waits at most :data:`PENDING_TIMEOUT` seconds for the whole, waiting for a free thread
    included (that one bound, so a slow registry is logged once).

    Parameters
    ----------
    app : fastapi.FastAPI
        The app (its ``state`` holds settings and source).
    state : ServingState
        The state serving.

    Returns
    -------
    dict of str to bool or None
        Per loaded task: True when the alias points at another version than the one loaded
        (or at none: a reload would not serve this one), False when at the one loaded, None
        when not known (the registry could not be read in time, or the source is not a
        registry). No exception escapes.
    """
    said = "for reload_pending, said as null"
    try:  # the bound covers waiting for a free thread of the loop too, not the look alone
        followed = await asyncio.wait_for(
            asyncio.to_thread(_followed_now, app, list(state.tables), said, bounded=False),
            PENDING_TIMEOUT,
        )
    except TimeoutError:  # no thread or no answer in time
        logger.info("registry not read %s: %s", said, _no_answer())
        followed = None
    except Exception as exc:  # scheduling failed: must not fail the listing
        logger.info("registry not read %s: %s", said, _describe(exc, ""))
        followed = None
    if followed is None:
        return dict.fromkeys(state.tables, None)
    return {task: followed.get(task) != t.model.version for task, t in state.tables.items()}


def followed_version(app: FastAPI, task: str) -> tuple[bool, str | None]:
    """Read which version the alias the server follows points at now, for a reviewer page.

    The value pages ask it when a value table read another version of the churn model than the
    one served (qa43 M1): a reload serves the table's version only when the registry's alias
    points at it now (a rolled-back champion never comes back by reloading). It waits at most
    :data:`PENDING_TIMEOUT` seconds and is never on the scoring path.

    Parameters
    ----------
    app : fastapi.FastAPI
        The app (its ``state`` holds settings and source).
    task : str
        The registered model name (``churn``).

    Returns
    -------
    tuple of (bool, str or None)
        Whether it is known, and the version (None when no version has the alias). Not known
        when the registry cannot be read in time or the source is not a registry. No exception
        escapes.
    """
    followed = _followed_now(app, [task], "for a value page, both remedies said")
    return (False, None) if followed is None else (True, followed[task])


def _followed_now(
    app: FastAPI, tasks: list[str], said: str, *, bounded: bool = True
) -> dict[str, str | None] | None:
    """Read the version the followed alias points at now, per task; None when not known.

    The one look of :func:`pending_reloads` and :func:`followed_version`: only a
    :class:`~serving.loader.RegistrySource` has a registry to ask (another source says not
    known); the look runs in a one-thread pool of its own and is waited for at most
    :data:`PENDING_TIMEOUT` seconds (unless ``bounded`` is False: the caller bounds the wait);
    a registry down or slow is logged ("registry not read <said>: <reason>") and said not
    known. No exception escapes.

    Parameters
    ----------
    app : fastapi.FastAPI
        The app (its ``state`` holds settings and source).
    tasks : list of str
        The registered model names to look up.
    said : str
        The words after "registry not read" in the log line when the look fails (which caller,
        and what it says instead).
    bounded : bool, default True
        Wait at most :data:`PENDING_TIMEOUT` seconds for the look; False when the caller bounds
        the whole wait itself (:func:`pending_reloads`), so a slow look is logged once.

    Returns
    -------
    dict of str to str or None, or None
        The version the alias points at by task (None for a task with no such version); None
        when not known (not a registry source, or the registry not read in time).
    """
    source: Source = app.state.source
    settings: Settings = app.state.settings
    if not isinstance(source, RegistrySource):
        return None
    # a registry down or slow must not fail the listing or the page; the source's lock keeps
    # a slow look from starting more of them
    return read_in_time(
        partial(source.followed_versions, tasks, settings.model_alias), said, bounded=bounded
    )


JOIN_SHARE: Final = 0.5
"""The share of :data:`PENDING_TIMEOUT` a view joining a started look waits on it at least
(:class:`RunningLooks`), however little of that look's own timeout is left."""


class RunningLooks:
    """The registry looks running now, one per key, so views while one runs wait on it.

    A view of a model page whose look is not answered in time leaves it running (until MLflow's
    client timeout, 62 s with the registry hung); each view starting its own left a thread per
    view, each holding a registry connection and its view's state. :func:`read_in_time` given
    these waits on the look of its key started before it instead, for what is left of that
    look's timeout but at least :data:`JOIN_SHARE` of the timeout (a view joining close to the
    deadline waited close to 0 s and said "registry not read" though the look might answer a
    moment later). A look is forgotten when it ends, so the next view asks the registry again;
    a view after the deadline of a look still running starts a new look in its place and waits
    its full timeout (waiting 0 s on the old one showed the served model only until that look
    ended, 62 s, even once the registry answered again). A look past its deadline that is in no
    registry call (:attr:`_Look.preparing`: the registry answered, its own work goes on, such as a
    model page's cards built cold) is still the one a view waits on, for :data:`JOIN_SHARE` of the
    timeout: a look in its place built the same cards again beside it, a cold global SHAP run more
    for each view. A look that answers within its timeout is never started twice,
    nor one still working on what the registry answered, and with the registry hung at most one
    look per key starts every :data:`PENDING_TIMEOUT` seconds.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, _Look[Any]] = {}
        self._lock = threading.Lock()

    def start(self, key: Hashable, look: Callable[[], T]) -> _Look[T]:
        """Return the running look of ``key`` within its deadline or preparing, or start ``look``.

        Parameters
        ----------
        key : hashable
            What the look reads.
        look : callable
            The registry read, called without arguments, started when no look of ``key`` is
            running or the running one is past its deadline while in a registry call (it then
            goes on, no longer found); one past its deadline in none is returned.

        Returns
        -------
        _Look
            The look to wait on.
        """
        with self._lock:
            running = self._running.get(key)
            # past its deadline, a look the registry answered works on our own (a model page's
            # cards built cold): a new look would do that work again beside it
            if running is not None and (
                running.future.done() or time.monotonic() < running.deadline or running.preparing
            ):
                return running
            running = self._running[key] = _Look.start(look)
        # outside the lock: a look already done calls it at once
        running.future.add_done_callback(partial(self._forget, key, running))
        return running

    def _forget(self, key: Hashable, running: _Look[Any], _done: Future[Any]) -> None:
        with self._lock:
            if self._running.get(key) is running:
                del self._running[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._running)


class Preparing(Exception):  # noqa: N818 (not an error: the page is still being prepared)
    """A look of ``staged`` :func:`read_in_time` late while working on what the registry answered.

    The registry answered every call the look made in time; the time went to the server's own
    work (a model page's cards built cold: artifacts parsed, global SHAP computed), so the
    caller says the page is still being prepared, not that the registry could not be read.
    """


_looking = threading.local()
"""The :class:`_Look` running in this thread (its registry calls marked by asking_registry)."""


@contextlib.contextmanager
def asking_registry() -> Iterator[None]:
    """Mark a registry call of the look running in this thread, for :func:`read_in_time`.

    A look late while in such a call is late for want of the registry; late out of one, it is
    late with its own work (:class:`Preparing`). Outside a look it marks nothing.

    Yields
    ------
    None
        While the registry call runs.
    """
    running: _Look[Any] | None = getattr(_looking, "look", None)
    if running is None:
        yield
        return
    with running._lock:
        running.asking += 1
    try:
        yield
    finally:
        with running._lock:
            running.asking -= 1
            running.answered += 1


class _Look(Generic[T]):
    """One registry look in a daemon thread of its own, and when its caller stops waiting."""

    def __init__(self, future: Future[T], started: float) -> None:
        self.future = future
        self.started = started  # when it was asked (time.monotonic())
        self.asking = 0  # registry calls running now (asking_registry)
        self.answered = 0  # registry calls ended (asking_registry)
        self._late = False
        self._lock = threading.Lock()

    @property
    def deadline(self) -> float:
        """When its caller stops waiting: :data:`PENDING_TIMEOUT` seconds after it was asked."""
        return self.started + PENDING_TIMEOUT

    @property
    def preparing(self) -> bool:
        """Whether the look works on what the registry answered (in no registry call now).

        Only once a registry call of it has ended: a look that has asked nothing yet (its thread
        not scheduled yet, or a look that marks no call) has had no answer to work on.
        """
        with self._lock:
            return not self.asking and self.answered > 0

    @classmethod
    def start(cls, look: Callable[[], T]) -> _Look[T]:
        """Start ``look`` in a daemon thread (Python's exit does not wait for a hung one)."""
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        running = cls(future, time.monotonic())

        def run() -> None:
            _looking.look = running  # its registry calls mark themselves (asking_registry)
            try:
                future.set_result(look())
            except BaseException as exc:  # handed to whoever waits, or logged late
                future.set_exception(exc)
            finally:
                _looking.look = None

        threading.Thread(target=run, name="guanxi-registry", daemon=True).start()
        return running

    def said_late(self, said: str, level: int, *, preparing: bool = False) -> None:
        """Log the look's end once, its callers having stopped waiting.

        A failure as the registry's ("registry not read ...; answered late"), or, for a look said
        still being prepared (``preparing``: the registry had answered, the failure is the
        server's own work's), "registry read but not prepared ...; failed late".
        A look that succeeds is logged at INFO with how long it took ("registry answered late
        ...: 4.3 s after it was asked", or "registry read and prepared late ..."): the
        caller said it could not be read, and the operator tells a slow registry from a down
        one (qa46 L3).
        """
        with self._lock:
            if self._late:
                return
            self._late = True

        def log(done: Future[T]) -> None:
            exc = done.exception()
            if exc is None:
                logger.info(
                    "%s %s: %.1f s after it was asked",
                    "registry read and prepared late" if preparing else "registry answered late",
                    said,
                    time.monotonic() - self.started,
                )
            else:
                wording = (
                    "registry read but not prepared %s; failed late: %s"
                    if preparing
                    else "registry not read %s; answered late: %s"
                )
                logger.log(level, wording, said, _describe(exc, ""))

        self.future.add_done_callback(log)


def _no_answer() -> str:
    """Say a registry look not answered within :data:`PENDING_TIMEOUT` seconds."""
    return f"no answer within {PENDING_TIMEOUT:g} s"


def read_in_time(
    look: Callable[[], T],
    said: str,
    *,
    bounded: bool = True,
    errors: tuple[type[Exception], ...] = (Exception,),
    level: int = logging.INFO,
    looks: RunningLooks | None = None,
    key: Hashable = None,
    staged: bool = False,
) -> T | None:
    """Read the registry in a thread of its own, waiting at most :data:`PENDING_TIMEOUT` seconds.

    The one bound of the server's registry reads outside a load: ``reload_pending`` and the
    value pages' followed version (:func:`followed_version`), and the model pages' cards
    (:func:`serving.ui.cards.load_cards`), which waited for MLflow's client timeout (20 s for
    each of 3 attempts, :data:`models.registry.ENV_DEFAULTS`) with the registry hung (qa44 L5).
    A look not answered in time goes on in its (daemon) thread (it ends with MLflow's timeout,
    or fills what it reads, such as the card cache) while the caller says what is known; its
    failure then is logged once when it ends.

    Parameters
    ----------
    look : callable
        The registry read, called without arguments.
    said : str
        The words after "registry not read" in the log line when the look fails or is late
        (which caller, and what it says instead).
    bounded : bool, default True
        Wait at most :data:`PENDING_TIMEOUT` seconds; False when the caller bounds the whole
        wait itself (:func:`pending_reloads`), so a slow look is logged once.
    errors : tuple of exception types, default (Exception,)
        The failures of the look said as "not read" (logged at ``level``, None returned);
        any other is raised. A look that is late is always said so.
    level : int, default logging.INFO
        The level of those log lines (a page's failure is a warning).
    looks : RunningLooks, optional
        Looks running now: a look of ``key`` started before and within its deadline is waited
        on instead of starting ``look`` (:meth:`RunningLooks.start`), for what is left of its
        timeout but at least :data:`JOIN_SHARE` of :data:`PENDING_TIMEOUT`.
    key : hashable, optional
        What the look reads, in ``looks``.
    staged : bool, default False
        The look marks its registry calls (:func:`asking_registry`) and does work of its own
        between them: late out of a registry call, it is late with that work, logged at INFO
        as such and raised as :class:`Preparing`, not said as "registry not read" (the model
        pages' cards built cold under load said the registry could not be read while it
        answered at once).

    Returns
    -------
    object or None
        What the look returned; None when it failed with one of ``errors`` or was late.

    Raises
    ------
    Preparing
        A ``staged`` look late while in no registry call.
    Exception
        A failure of the look not in ``errors``: a copy of its own for each caller
        (:func:`_own_copy`), raised from the look's, which no caller raises.
    RuntimeError
        The look's thread ended by a failure that is no :class:`Exception` (``SystemExit``,
        ``KeyboardInterrupt``), said so, raised from it unless ``errors`` takes a
        :class:`RuntimeError` (then logged and None, as any other failure): it ends the look,
        not the caller.
    """
    running = looks.start(key, look) if looks is not None else _Look.start(look)
    left = running.deadline - time.monotonic()
    timeout = min(PENDING_TIMEOUT, max(left, JOIN_SHARE * PENDING_TIMEOUT)) if bounded else None
    try:  # the look's exception is read, not raised: views waiting on one look share it
        exc = running.future.exception(timeout=timeout)
    except TimeoutError:  # the wait's: no answer in time
        if staged and running.preparing:  # the registry answered: the time went to our work
            logger.info(
                "registry read but not prepared %s: not done within %g s", said, PENDING_TIMEOUT
            )
            running.said_late(said, level, preparing=True)
            raise Preparing(f"not done within {PENDING_TIMEOUT:g} s") from None
        logger.log(level, "registry not read %s: %s", said, _no_answer())
        running.said_late(said, level)
        return None
    if exc is None:
        return running.future.result()
    if not isinstance(exc, Exception):  # SystemExit or KeyboardInterrupt of the look's thread
        failure: Exception = RuntimeError(f"registry look failed: {_describe(exc, '')}")
        failure.__cause__ = exc  # it ended the look, not the caller: a failure as any other
    else:
        failure = exc
    if isinstance(failure, errors):
        logger.log(level, "registry not read %s: %s", said, _describe(failure, ""))
        return None
    if failure is not exc:
        raise failure
    raise _own_copy(exc) from exc


def _own_copy(exc: Exception) -> Exception:
    """Return a copy of a look's failure for one caller to raise (its type, args and attributes).

    Several views may wait on one look (:class:`RunningLooks`): raising its one exception object
    in each of their threads chained each raise's frames onto the traceback the others raise
    and log. Each caller raises a copy of its own ``from`` the look's (whose traceback is the look
    thread's). The copy is made without calling ``__init__`` again (one that formats its
    arguments formatted its own message twice, one taking other arguments than its ``args``
    failed), with a ``__notes__`` list of its own, its ``__slots__`` and an ``OSError``'s
    ``errno``, ``strerror``, ``filename`` and ``filename2`` (not in its args: the copy of a file
    the look could not read named none, said otherwise and was a RuntimeError); an exception
    whose copy does not say the same is said by a :class:`RuntimeError` naming its type and
    message.
    """
    cls = type(exc)
    try:
        fresh = cls.__new__(cls, *exc.args)
        fresh.args = exc.args
        fresh.__dict__.update(vars(exc))
        for name in _slots(cls):
            if hasattr(exc, name):
                setattr(fresh, name, getattr(exc, name))
        if isinstance(exc, OSError):
            for name in ("errno", "strerror", "filename", "filename2"):
                if getattr(exc, name) is not None:  # one set to None is said "None"
                    setattr(fresh, name, getattr(exc, name))
        if "__notes__" in vars(exc):
            fresh.__notes__ = list(exc.__notes__)
        same = str(fresh) == str(exc)
    except Exception:  # a __new__ its args do not fit, a message read from what was not copied
        same = False
    if not same:
        return RuntimeError(f"registry look failed: {_describe(exc, '')}")
    return fresh


def _slots(cls: type) -> list[str]:
    """Return the attribute names of the ``__slots__`` of ``cls`` and its bases (as stored)."""
    names = []
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        for name in [slots] if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            private = name.startswith("__") and not name.endswith("__")
            names.append(f"_{klass.__name__.lstrip('_')}{name}" if private else name)
    return names


def _describe(exc: BaseException, alias: str) -> str:
    """Return a one-line reason for a failed load (exception type and message, no traceback).

    A version whose files are gone is named with the folder and what to run
    (:meth:`models.versions.ModelFilesMissingError.of_alias`, ``alias`` the one served); an
    ``OSError`` with a file (one the load could not read) names it.
    """
    if isinstance(exc, ModelFilesMissingError):
        return f"{exc.task} version {exc.version}: {exc.of_alias(alias)}"
    text = str(exc).strip().splitlines()
    said = f"{type(exc).__name__}: {text[0] if text else 'no message'}"
    # a file the load could not read is named, whatever the message says
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in said:
        said += f" (file {exc.filename})"
    return said


def _unchained(exc: BaseException) -> tuple[BaseException, str]:
    """Return a failure to log with its own traceback alone, and its chain, a line an exception.

    A registry down logged MLflow's chained traceback whole: urllib3's, requests', MLflow's and
    ours, 120 lines (qa46 L4). The failure's own traceback (our frames down to the raise) is
    logged, from a copy without the chain (:func:`_own_copy`: the failure itself is left
    whole), and each exception it was raised from ("from") or during ("during") is one line,
    its type and first line, down to the first: the cause is kept. A failure without a chain,
    or whose copy does not say the same, is logged as it is.

    A copy, not the text ``traceback.format_exception(exc, chain=False)`` gives (the same
    traceback): the record keeps an exception (``exc_info``), which a handler may format itself
    (a JSON one, not through ``logging.Formatter``'s ``exc_text``), and the failure itself there
    is formatted with its chain; the text in the message would change the message.
    """
    lines: list[str] = []
    link: BaseException = exc
    while True:
        if link.__cause__ is not None:
            link, how = link.__cause__, "from"
        elif link.__context__ is not None and not link.__suppress_context__:
            link, how = link.__context__, "during"
        else:
            break
        if len(lines) == 20:  # a cycle or a runaway chain: enough said
            break
        text = str(link).strip().splitlines()
        lines.append(f"\n  {how} {type(link).__name__}: {text[0] if text else 'no message'}")
    if not lines or not isinstance(exc, Exception):
        return exc, ""
    copy = _own_copy(exc)
    if type(copy) is not type(exc):  # not copied as it is: logged whole
        return exc, ""
    copy.__cause__ = copy.__context__ = None
    copy.__suppress_context__ = True
    return copy.with_traceback(exc.__traceback__), "".join(lines)


def _swap(app: FastAPI, state: ServingState) -> None:
    """Make ``state`` current and start explaining it if configured."""
    holder: StateHolder = app.state.holder
    settings: Settings = app.state.settings
    holder.swap(state)
    logger.info(
        "serving snapshot as of %s with %s",
        state.snapshot.as_of,
        ", ".join(f"{t} v{tab.model.version}" for t, tab in state.tables.items()),
    )
    for task, exc in state.gone.items():  # once per load; it stays out until the next one
        logger.warning(
            "not serving %s until a reload: %s; %s",
            task,
            _describe(exc, settings.model_alias),
            RELOAD,
        )
    if settings.precompute_reasons:
        explain_in_background(
            state, holder, settings.precompute_chunk, app.state.stop, settings.store()
        )


async def reload_state(app: FastAPI, *, retrying: bool = False) -> str | None:
    """Load a new state and swap it in; one load at a time.

    While nothing is loaded yet, a call arriving while a load runs (the first load or its
    retry, another reload) waits for that load. When it failed for want of the registry
    (:data:`UNREACHED`: hung, out of reach, not :data:`SAID_IN_FULL`), the call answers with
    that failure instead of asking again after it: with the registry hung, a reload queued
    behind the background retry's lookup (MLflow's client timeout, about a minute) then asked
    again, about two minutes in all. When it succeeded or failed for what is missing (no
    snapshot, no champion yet), the call loads again in turn: that load may have read the
    registry's aliases or the store before a promotion or a ``guanxi features build`` the
    reload is for. Once a state serves, a reload loads after the one running.

    A successful load also empties the loaded uplift models
    (:class:`serving.targeting.UpliftCache`), so ``POST /v1/targeting`` reads them again.
    A load that leaves out a task whose champion's files are gone
    (:func:`serving.loader.load_state`) is swapped in only when the current state does not
    serve that task (nothing loaded yet, or that task already left out); otherwise it fails
    as any load, and the current state keeps serving the model it holds.

    Parameters
    ----------
    app : fastapi.FastAPI
        The app (its ``state`` holds settings, source, holder and the load lock).
    retrying : bool, default False
        A retry while nothing serves (the background load): it answers with the outcome of a
        load running, whatever it is, since it only waits for a state to serve.

    Returns
    -------
    str or None
        None on success, else why the load failed (the old state keeps serving).
    """
    running: asyncio.Task[_Outcome] | None = app.state.loading
    if running is not None and not running.done() and app.state.holder.current is None:
        joined = await _wait(app, running)
        if retrying or joined.unreached:
            return joined.reason
    return (await _wait(app, _start_load(app))).reason


class _Outcome(NamedTuple):
    """How a load ended: why it failed (None: it succeeded), and whether for want of the registry.

    A failure for want of the registry (:data:`UNREACHED`) is one a call waiting for the load
    answers with (:func:`reload_state`).
    """

    reason: str | None
    unreached: bool = False


def _start_load(app: FastAPI) -> asyncio.Task[_Outcome]:
    """Start a load in turn as a task, kept until it ends (the lifespan cancels those running)."""
    task = asyncio.ensure_future(_load_in_turn(app))
    app.state.loading = task
    loads: set[asyncio.Task[_Outcome]] = app.state.loads
    loads.add(task)
    task.add_done_callback(loads.discard)
    task.add_done_callback(partial(_retrieve, waiting=_waiters(app)))
    return task


def prepare_loads(app: FastAPI) -> None:
    """Set what the loads of ``app`` keep: their lock, the newest, those running, their waiters.

    The lifespan calls it before its first load; so does a test calling :func:`reload_state`
    without the lifespan (and its background retries). The waiters were made on first use,
    the rest here.

    Parameters
    ----------
    app : fastapi.FastAPI
        The app, whose ``state`` gets ``load_lock`` (one load at a time), ``loading`` (the
        newest load, waited on while none serves), ``loads`` (every load running, cancelled at
        shutdown) and ``waiting`` (how many calls wait for each load running).
    """
    app.state.load_lock = asyncio.Lock()
    app.state.loading = None
    app.state.loads = set()
    app.state.waiting = {}


def _waiters(app: FastAPI) -> dict[asyncio.Task[_Outcome], int]:
    """Return how many calls wait for each load running, by its task (:func:`_retrieve`)."""
    waiting: dict[asyncio.Task[_Outcome], int] = app.state.waiting
    return waiting


async def _wait(app: FastAPI, task: asyncio.Task[_Outcome]) -> _Outcome:
    """Wait for a load, shielded, counted among its waiters.

    A caller that stops waiting (a request cancelled, the background retry at shutdown) leaves
    the load to end for the others.
    """
    waiting = _waiters(app)
    waiting[task] = waiting.get(task, 0) + 1
    try:
        return await asyncio.shield(task)
    finally:
        waiting[task] -= 1
        if not waiting[task]:
            del waiting[task]


def _retrieve(task: asyncio.Task[_Outcome], waiting: dict[asyncio.Task[_Outcome], int]) -> None:
    """Retrieve how a load ended; log an error no caller waits for to raise.

    Without it, a load whose callers were all cancelled and which ended in an error (not a load
    failure: those are answered) was asyncio's "Task exception was never retrieved", the error
    said nowhere.
    """
    if task.cancelled():
        return
    exc = task.exception()  # retrieved: a caller still waiting gets it too
    if exc is not None and not waiting.get(task):
        logger.error("load ended in an error no request waited for", exc_info=exc)


async def _load_in_turn(app: FastAPI) -> _Outcome:
    """Load once the loads before have ended (the load lock), then load (:func:`_load_once`)."""
    async with app.state.load_lock:
        return await _load_once(app)


async def _load_once(app: FastAPI) -> _Outcome:
    """Load a new state and swap it in, or say why not and log it (:func:`reload_state`).

    An unexpected failure (a registry out of reach, a refused model) is logged with its
    traceback when it is new (the first, or another than the last); the same failure again,
    each start-up retry with the registry down, is one line: its reason, how many loads in a row
    failed, and, with nothing loaded, that nothing is served yet and it is retried every
    ``GUANXI_RETRY_SECONDS`` (the first failure too). What is
    missing (:data:`SAID_IN_FULL`) is said once, then again when it changes, at debug level in
    between (``/readyz`` and the API's 503 keep saying it).
    """
    source: Source = app.state.source
    settings: Settings = app.state.settings
    holder: StateHolder = app.state.holder
    try:
        # the values through the app's NewestValues: a refused table is said once a write
        state = await asyncio.to_thread(load_state, source, settings, app.state.newest_values)
        current: ServingState | None = holder.current
        served = [t for t in state.gone if current is not None and t in current.tables]
        if served:  # the model in memory serves it: keep it rather than answer 503 for it
            raise state.gone[served[0]]
    except Exception as exc:
        reason = _describe(exc, settings.model_alias)
        expected = isinstance(exc, SAID_IN_FULL)
        again = reason == holder.last_error
        holder.failed_loads += 1
        # why first: a route reading the holder once last_error says a load failed (the sync
        # ones run in the thread pool) says why, not nothing or the failure before's
        holder.missing = missing(exc)
        holder.failure = failed_why(exc)
        holder.last_error = reason
        # nothing loaded: the background load tries again (a reload's caller says its own);
        # "keeping the current state" was said of none
        idle = holder.current is None
        kept = "nothing served yet" if idle else "keeping the current state"
        if not again:
            # nothing trained or built yet, or files gone, is said in full: no traceback
            logged, causes = (None, "") if expected else _unchained(exc)
            logger.log(
                logging.WARNING,
                "load failed, %s: %s%s",
                f"{kept}; retrying every {settings.retry_seconds:g} s" if idle else kept,
                reason,
                causes,
                exc_info=logged,
            )
        else:
            logger.log(
                logging.DEBUG if expected else logging.WARNING,
                "load failed again (%d in a row), %s: %s%s",
                holder.failed_loads,
                kept,
                reason,
                f"; retrying every {settings.retry_seconds:g} s" if idle else "",
            )
        return _Outcome(reason, isinstance(exc, UNREACHED) and not expected)
    _swap(app, state)
    app.state.uplift_cache.clear()  # POST /v1/targeting loads the uplift models again
    return _Outcome(None)


async def _load_until_ready(app: FastAPI) -> None:
    """Try to load until a state is current (a reload may get there first), without end."""
    settings: Settings = app.state.settings

    @retry(wait=wait_fixed(settings.retry_seconds), retry=retry_if_result(lambda ready: not ready))
    async def attempt() -> bool:
        if app.state.holder.current is not None:
            return True
        return await reload_state(app, retrying=True) is None

    await attempt()


async def announce_reload(app: FastAPI) -> WorkersLoaded | None:
    """After a successful reload, make the other workers load too and wait for them.

    Parameters
    ----------
    app : fastapi.FastAPI
        The app, whose state was just reloaded.

    Returns
    -------
    WorkersLoaded or None
        The generation written and how many workers serve it (None with one worker).
    """
    run: RunDir | None = app.state.run
    if run is None:
        return None
    settings: Settings = app.state.settings
    generation = run.bump()
    app.state.generation = generation  # this worker serves it already
    run.mark_loaded(generation, ok=True)
    return await run.wait_loaded(generation, settings.reload_wait_seconds)


async def _load_and_follow(app: FastAPI) -> None:
    """Load until ready; with several workers, follow the reload generation without end.

    A worker follows from its start: one still retrying its first load tries again as soon as
    another worker announces a reload, so the admin call waits for it too. After each attempt it
    records the generation it acted on.
    """
    run: RunDir | None = app.state.run
    if run is None:
        await _load_until_ready(app)
        return
    settings: Settings = app.state.settings
    holder: StateHolder = app.state.holder
    retry_at = 0.0  # monotonic time of the next attempt while nothing is loaded
    while True:
        latest = run.generation()
        if latest > app.state.generation or (
            holder.current is None and time.monotonic() >= retry_at
        ):
            # a generation announced is a reload (another worker's): a load running may have
            # read the aliases before the promotion it is for
            announced = latest > app.state.generation
            app.state.generation = max(latest, app.state.generation)
            error = await reload_state(app, retrying=not announced)
            # the generation now current: an admin reload of this worker may have moved it on
            run.mark_loaded(app.state.generation, ok=error is None)
            retry_at = time.monotonic() + settings.retry_seconds
        await asyncio.sleep(settings.reload_poll_seconds)


async def _warm_up(holder: StateHolder) -> None:
    """Warm up the explainer in a thread; mark it warm when done, failed or not (logged)."""
    try:
        warm = await asyncio.to_thread(treeshap.warm_up)
    except Exception:
        logger.exception("explainer warm-up failed; the first explained request compiles instead")
    else:
        if warm.in_process:
            how = "already compiled in this process"
        else:
            how = "compiled" if warm.compiled else "loaded from numba's cache"
        logger.info(
            "explainer warm in %.2f s (kernels %s; cache %s)", warm.seconds, how, warm.cache_path
        )
    finally:
        holder.explainer_warm = True


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Load and warm up in the background; at shutdown stop both and explaining, seal audit."""
    prepare_loads(app)  # the load lock, the newest load, those running and their waiters
    app.state.stop = threading.Event()
    run: RunDir | None = app.state.run
    # read before the first load: a reload announced while it runs is loaded again afterwards
    app.state.generation = run.generation() if run else 0
    warming = asyncio.create_task(_warm_up(app.state.holder), name="guanxi-warm-up")
    loader = asyncio.create_task(_load_and_follow(app), name="guanxi-load")
    try:
        yield {}
    finally:
        app.state.stop.set()
        for load in list(app.state.loads):  # loads no caller waits for any more
            load.cancel()
        for task in (loader, warming):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        app.state.audit.close()  # fsync the audit lines written since the last timer tick
        app.state.metrics.close()
