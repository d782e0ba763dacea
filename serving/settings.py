"""Typed settings of guanxi, read from ``GUANXI_*`` environment variables: one class per process.

The batch jobs and the CLI read the store's root (``GUANXI_HOME``) from it, the scoring service
everything else. Nothing is read at import time: :func:`get_settings` builds the settings on first
call and caches them; tests set the environment and call ``get_settings.cache_clear()``, override
the dependency, or pass a :class:`Settings` to ``create_app``.

The service's production checks (API keys, an audit key and a session key, each of at least
:data:`MIN_SECRET_CHARS` characters, the two keys different) are
:meth:`Settings.check_serving`, which the app factory and ``guanxi serve`` call: a batch job needs
no API key, and the server refuses to start without them outside ``--dev``.

API keys are parsed by the settings themselves: ``GUANXI_API_KEYS="key:role,key:role"`` is read as
text (``NoDecode``: not as JSON) and turned into a mapping of key to :class:`Role` by a
before-validator; the field is left out of the settings' ``repr``, so no key is ever printed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from features.contracts import quoted_near
from features.database import DUCKDB_WRITE_MEMORY
from features.store import Store
from models.tasks import task_names

__all__ = ["MAX_BATCH", "MIN_SECRET_CHARS", "Role", "Settings", "get_settings", "parse_api_keys"]

MAX_BATCH = 1000
"""Most customer ids one ``POST /v1/scores`` may carry (its request schema's limit); defined here
so that the settings do not import the request schemas, which ``guanxi train`` would import too."""

MIN_SECRET_CHARS = 32
"""Shortest API key, audit key or session key accepted outside ``--dev``."""


class Role(IntEnum):
    """What a key may do; a higher role may do everything a lower one may."""

    scorer = 1
    reviewer = 2
    admin = 3


def parse_api_keys(spec: str) -> dict[str, Role]:
    """Parse ``"key:role,key:role"`` into a mapping of key to role.

    Parameters
    ----------
    spec : str
        Comma-separated ``key:role`` pairs; roles are ``scorer``, ``reviewer`` or ``admin``.
        Whitespace around items is ignored.

    Returns
    -------
    dict of str to Role
        Each key with its role.

    Raises
    ------
    ValueError
        If an item has no ``:``, an empty key, an unknown role, or a key appears twice. The message
        names the item's position, never the key itself.
    """
    keys: dict[str, Role] = {}
    for position, item in enumerate((i.strip() for i in spec.split(",")), start=1):
        if not item:
            continue
        key, sep, role = item.rpartition(":")
        if not sep or not key.strip():
            raise ValueError(f"GUANXI_API_KEYS item {position} is not of the form key:role")
        if role.strip() not in Role.__members__:
            raise ValueError(
                f"GUANXI_API_KEYS item {position} has unknown role {role.strip()!r}; "
                f"expected one of {', '.join(Role.__members__)}"
            )
        if key.strip() in keys:
            raise ValueError(f"GUANXI_API_KEYS item {position} repeats an earlier key")
        keys[key.strip()] = Role[role.strip()]
    return keys


class Settings(BaseSettings):
    """Settings of guanxi: the store, and the scoring service.

    Every field is read from the environment variable ``GUANXI_<FIELD>`` (case-insensitive).
    Outside dev mode the service refuses to start without API keys and without an audit key
    (:meth:`check_serving`).
    """

    model_config = SettingsConfigDict(
        env_prefix="GUANXI_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    home: Path = Field(
        default=Path(".guanxi"), description="Store root (snapshots, scores, audit log)."
    )
    api_keys: Annotated[dict[str, Role], NoDecode] = Field(
        default_factory=dict, repr=False, description='API keys, "key:role,key:role".'
    )
    audit_key: SecretStr = Field(
        default=SecretStr(""), description="HMAC key for customer ids in audit."
    )
    session_key: SecretStr = Field(
        default=SecretStr(""),
        description="Key that signs reviewer session cookies (independent of the audit key).",
    )
    store_key: SecretStr = Field(
        default=SecretStr(""),
        description=(
            "Key that signs the store's table manifests (score and value tables, plans, campaigns)."
        ),
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="Send the session cookie over HTTPS only (default: on outside dev mode).",
    )
    session_idle_seconds: int = Field(
        default=1800, gt=0, description="A reviewer session ends after this long without use."
    )
    auth_free_failures: int = Field(
        default=5, ge=0, description="Failed authentications a client may have before backoff."
    )
    auth_max_backoff_seconds: float = Field(
        default=300.0, gt=0, description="Longest wait imposed on a client after failures."
    )
    api_docs: bool | None = Field(
        default=None,
        description="Serve /docs, /redoc and /openapi.json (default: on in dev mode only).",
    )
    audit_flush_seconds: float = Field(
        default=0.2, gt=0, description="How often audit lines are fsynced (and at shutdown)."
    )
    dev: bool = Field(default=False, description="Development mode: allows generated keys.")
    tasks: Annotated[tuple[str, ...], NoDecode] = Field(
        default_factory=task_names,
        description='Tasks whose champions are served, "churn,repurchase" or a JSON list '
        "(default: all).",
    )
    model_alias: str = Field(default="champion", description="Registry alias loaded for each task.")
    max_body_bytes: int = Field(
        default=1_048_576, gt=0, description="Largest accepted request body."
    )
    max_batch: int = Field(
        default=MAX_BATCH,
        gt=0,
        le=MAX_BATCH,
        description=f"Most customer ids in one POST /v1/scores (at most {MAX_BATCH}, the most its "
        "request schema takes).",
    )
    reason_cache_size: int = Field(
        default=20_000, ge=0, description="Customers per task whose formatted reasons are kept."
    )
    model_threads: int = Field(default=1, ge=1, description="XGBoost threads per prediction.")
    precompute_reasons: bool = Field(
        default=True, description="Explain every snapshot customer in the background after a load."
    )
    precompute_chunk: int = Field(
        default=2048, gt=0, description="Rows per background explain step."
    )
    retry_seconds: float = Field(
        default=10.0, gt=0, description="Wait between start-up load attempts."
    )
    run_dir: Path | None = Field(
        default=None,
        description="The private directory the workers of one `guanxi serve` run share (set by "
        "`guanxi serve --workers N`, N > 1; see serving.workers).",
    )
    worker_healthcheck_seconds: int = Field(
        default=60,
        gt=0,
        description="`guanxi serve --workers N`, N > 1: how long uvicorn's supervisor waits for a "
        "worker to answer its health check before it kills the worker and starts another. A "
        "worker answers only once started; importing and loading models on a loaded machine can "
        "take longer than uvicorn's own 5 s, after which it would replace every worker forever.",
    )
    reload_poll_seconds: float = Field(
        default=0.5, gt=0, description="How often a worker looks for a reload by another worker."
    )
    reload_wait_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How long an admin reload waits for the other workers to load the new state.",
    )
    features_in_memory_events: int = Field(
        default=8_000_000,
        ge=0,
        description=(
            "guanxi features build: Parquet or CSV events or a database's events of at most this "
            "many rows (Parquet: by the files' metadata; CSV: estimated from the files' sizes "
            "and first MiB; a database: SELECT COUNT(*) of at most this many rows plus one) "
            "are validated and built in memory, which is faster for small inputs; more are "
            "staged on disk (0: always staged)."
        ),
    )
    duckdb_write_memory: str = Field(
        default=DUCKDB_WRITE_MEMORY,
        pattern=r"^\s*\d+(\.\d+)?\s*([KkMmGgTt][Ii]?[Bb]|%)\s*$",
        description=(
            "guanxi score, value and target into a DuckDB table (--out duckdb:///... "
            "--out-table): DuckDB's memory limit while it creates the table from the rows' "
            "temporary file, e.g. 512MB, 4GB or 50% (DuckDB's own default is 80% of the "
            "machine's memory)."
        ),
    )
    band_high_decile: int = Field(
        default=2, ge=1, le=10, description="Deciles 1..n are band 'high'."
    )
    band_medium_decile: int = Field(
        default=5, ge=1, le=10, description="Deciles up to n are 'medium'."
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys_parse(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            return parse_api_keys(value)
        if isinstance(value, Mapping):
            return {str(k): Role[r] if isinstance(r, str) else r for k, r in value.items()}
        return value

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks_parse(cls, value: Any) -> Any:
        """Read ``GUANXI_TASKS=churn,repurchase`` as a list, and a JSON list as before.

        Only '["churn"]' worked: ``churn`` failed with pydantic's "error parsing value for
        field tasks" (the field is read as text, ``NoDecode``, and parsed here).
        """
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"GUANXI_TASKS is not a JSON list ({exc})") from exc
        return tuple(task.strip() for task in value.split(",") if task.strip())

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = ", ".join(task_names())
        unknown = [t for t in value if t not in task_names()]
        if unknown:
            raise ValueError(
                f"GUANXI_TASKS: unknown task{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(quoted_near(t, task_names()) for t in unknown)}; the known tasks "
                f"are {known} "
                '(comma-separated, "churn,repurchase", or a JSON list)'
            )
        if not value:
            raise ValueError(f"GUANXI_TASKS names no task: give some of {known}, or unset it")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.band_medium_decile < self.band_high_decile:
            raise ValueError("GUANXI_BAND_MEDIUM_DECILE must be >= GUANXI_BAND_HIGH_DECILE")
        return self

    def check_serving(self) -> Settings:
        """Refuse to serve with missing or short secrets, unless in dev mode.

        Outside dev mode the service needs API keys, an audit key, a session key and a store
        key, each of at least :data:`MIN_SECRET_CHARS` characters, the session key different from
        the audit key (so either can rotate alone), and no API key equal to one of those three
        (its holder could sign what they sign) or of one character repeated.

        Returns
        -------
        Settings
            ``self``, when the service may start.

        Raises
        ------
        ValueError
            Naming every missing or short setting at once (and an API key's position), never
            a value.
        """
        if self.dev:
            return self
        problems = []
        if not self.keys:
            problems.append("GUANXI_API_KEYS is empty: set key:role pairs, or start with --dev")
        short = [str(n) for n, key in enumerate(self.keys, start=1) if len(key) < MIN_SECRET_CHARS]
        if short:
            problems.append(
                f"GUANXI_API_KEYS item {', '.join(short)}: an API key must have at least "
                f"{MIN_SECRET_CHARS} characters outside --dev"
            )
        unset = [
            name
            for name, secret in (
                ("GUANXI_AUDIT_KEY", self.audit_key),
                ("GUANXI_SESSION_KEY", self.session_key),
                ("GUANXI_STORE_KEY", self.store_key),
            )
            if len(secret.get_secret_value()) < MIN_SECRET_CHARS
        ]
        problems += [
            f"{name} must be set to a secret of at least {MIN_SECRET_CHARS} characters (no "
            "default works outside --dev)"
            for name in unset
        ]
        if short or unset:
            problems[-1] += "; e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        if not problems and (
            self.session_key.get_secret_value() == self.audit_key.get_secret_value()
        ):
            problems.append(
                "GUANXI_SESSION_KEY must differ from GUANXI_AUDIT_KEY, so either can rotate alone"
            )
        problems += self._weak_api_keys()
        if problems:  # every one at once, not one per attempt to start
            raise ValueError("; ".join(problems))
        return self

    def _weak_api_keys(self) -> list[str]:
        """Name the API keys (by position, never by value) that are no secret of their own.

        A key equal to the audit, session or store key gave whoever holds it (a scorer) what
        signs the audit chain, the session cookies or the store's manifests; a key of one
        character repeated (``"a" * 40``) passed the length check.
        """
        secrets = {
            "GUANXI_AUDIT_KEY": (self.audit_key, "sign audit lines (forge the audit chain)"),
            "GUANXI_SESSION_KEY": (self.session_key, "sign reviewer session cookies"),
            "GUANXI_STORE_KEY": (self.store_key, "sign the store's tables"),
        }
        problems = []
        for n, key in enumerate(self.keys, start=1):
            for name, (secret, could) in secrets.items():
                if key == secret.get_secret_value():
                    problems.append(
                        f"GUANXI_API_KEYS item {n} is the same as {name}: whoever holds the API "
                        f"key could {could}; give each its own secret"
                    )
            if len(key) >= MIN_SECRET_CHARS and len(set(key)) == 1:
                problems.append(
                    f"GUANXI_API_KEYS item {n} is one character repeated: no secret, give a "
                    "random one outside --dev"
                )
        return problems

    def store(self, home: Path | None = None) -> Store:
        """Return the store, signing and checking tables with ``store_key``.

        Parameters
        ----------
        home : Path, optional
            The store's root; default ``home``.

        Returns
        -------
        features.store.Store
            Without ``GUANXI_STORE_KEY`` tables are written unsigned and read unchecked.
        """
        return Store(home or self.home, self.store_key.get_secret_value().encode() or None)

    @property
    def secure_cookie(self) -> bool:
        """Whether the session cookie is ``Secure`` (``GUANXI_COOKIE_SECURE``, else not dev)."""
        return (not self.dev) if self.cookie_secure is None else self.cookie_secure

    @property
    def docs_enabled(self) -> bool:
        """Whether ``/docs``, ``/redoc`` and ``/openapi.json`` are served (``GUANXI_API_DOCS``)."""
        return self.dev if self.api_docs is None else self.api_docs

    @property
    def keys(self) -> dict[str, Role]:
        """The configured API keys with their roles."""
        return dict(self.api_keys)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the settings read from the environment, built once.

    Returns
    -------
    Settings
        The cached settings; ``get_settings.cache_clear()`` rereads the environment.
    """
    return Settings()
