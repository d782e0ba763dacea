"""Settings and keys: parsing, refusals outside dev mode, constant-time key checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from serving.app import create_app
from serving.deps import KeyRing
from serving.schemas import MAX_BATCH
from serving.settings import Role, Settings, get_settings, parse_api_keys


def test_parse_api_keys() -> None:
    assert parse_api_keys(" a:scorer, b:admin ,") == {"a": Role.scorer, "b": Role.admin}
    assert parse_api_keys("k:with:colon:reviewer") == {"k:with:colon": Role.reviewer}
    with pytest.raises(ValueError, match="item 1 is not of the form"):
        parse_api_keys("justakey")
    with pytest.raises(ValueError, match="unknown role 'root'"):
        parse_api_keys("a:root")
    with pytest.raises(ValueError, match="item 2 repeats") as err:
        parse_api_keys("topsecret:scorer,topsecret:admin")
    assert "topsecret" not in str(err.value)


def test_refuses_to_serve_without_keys_or_audit_key(tmp_path: Path) -> None:
    long = "x-0123456789abcdef-0123456789abcdef"
    with pytest.raises(ValueError, match="GUANXI_API_KEYS is empty"):
        Settings(home=tmp_path, audit_key=SecretStr(long)).check_serving()
    with pytest.raises(ValueError, match="GUANXI_AUDIT_KEY must be set"):
        Settings(home=tmp_path, api_keys=SecretStr(f"{long}:admin")).check_serving()
    with pytest.raises(ValueError, match="GUANXI_AUDIT_KEY must be set"):
        Settings(
            home=tmp_path, api_keys=f"{long}:admin", audit_key=SecretStr("short")
        ).check_serving()
    with pytest.raises(ValueError, match="GUANXI_API_KEYS is empty"):
        create_app(Settings(home=tmp_path))  # the app factory refuses too
    assert Settings(home=tmp_path, dev=True).check_serving().keys == {}
    # a batch job reads the same settings and needs no key
    assert Settings(home=tmp_path).home == tmp_path


def test_secrets_need_32_characters_outside_dev(tmp_path: Path) -> None:
    good = {
        "audit_key": SecretStr("a" * 32),
        "session_key": SecretStr("s" * 32),
        "store_key": SecretStr("t" * 32),
    }
    admin = "admin-0123456789abcdef-0123456789abcdef"
    keys = f"{admin}:admin,one-character-too-short-0123456:scorer"
    with pytest.raises(
        ValueError, match="GUANXI_API_KEYS item 2: an API key must have at least 32"
    ) as e:
        Settings(home=tmp_path, api_keys=keys, **good).check_serving()
    assert "one-character" not in str(e.value)
    keys = f"{admin}:admin"
    with pytest.raises(ValueError, match="GUANXI_AUDIT_KEY must be set to a secret of at least 32"):
        Settings(
            home=tmp_path, api_keys=keys, **{**good, "audit_key": SecretStr("a" * 31)}
        ).check_serving()
    with pytest.raises(
        ValueError, match="GUANXI_SESSION_KEY must be set to a secret of at least 32"
    ):
        Settings(home=tmp_path, api_keys=keys, audit_key=good["audit_key"]).check_serving()
    with pytest.raises(ValueError, match="GUANXI_SESSION_KEY must differ from GUANXI_AUDIT_KEY"):
        Settings(
            home=tmp_path, api_keys=keys, **{**good, "session_key": good["audit_key"]}
        ).check_serving()
    with pytest.raises(ValueError, match="GUANXI_STORE_KEY must be set to a secret of at least 32"):
        Settings(
            home=tmp_path, api_keys=keys, **{**good, "store_key": SecretStr("t" * 31)}
        ).check_serving()
    assert Settings(home=tmp_path, api_keys=keys, **good).check_serving()
    assert Settings(home=tmp_path, api_keys="k:admin", dev=True).check_serving()  # dev: any key


def test_an_api_key_that_is_another_secret_or_one_character_is_refused(tmp_path: Path) -> None:
    """heavy32: an API key equal to the audit key let a scorer sign audit lines (forge the
    chain); equal to the session or store key, sign cookies or tables; "a" * 40 passed as a
    secret. Each is named by its position and the secret it equals, never by value."""
    good = {
        "audit_key": SecretStr("audit-0123456789abcdef-0123456789abcdef"),
        "session_key": SecretStr("session-0123456789abcdef-0123456789abcd"),
        "store_key": SecretStr("store-0123456789abcdef-0123456789abcdef"),
    }
    audit, store = (good[k].get_secret_value() for k in ("audit_key", "store_key"))
    keys = f"{audit}:scorer,{'a' * 40}:reviewer,{store}:admin"
    with pytest.raises(ValueError) as e:
        Settings(home=tmp_path, api_keys=keys, **good).check_serving()
    assert str(e.value) == (
        "GUANXI_API_KEYS item 1 is the same as GUANXI_AUDIT_KEY: whoever holds the API key could "
        "sign audit lines (forge the audit chain); give each its own secret; GUANXI_API_KEYS "
        "item 2 is one character repeated: no secret, give a random one outside --dev; "
        "GUANXI_API_KEYS item 3 is the same as GUANXI_STORE_KEY: whoever holds the API key "
        "could sign the store's tables; give each its own secret"
    )
    assert Settings(home=tmp_path, api_keys=keys, **good, dev=True).check_serving()  # dev: any


def test_tasks_are_read_comma_separated_or_as_json_and_an_unknown_one_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """heavy32: GUANXI_TASKS=churn failed with pydantic's "error parsing value for field tasks"
    (only '["churn"]' worked), and an unknown task was said as a Python list."""
    for given in ("churn", " churn , repurchase ", '["churn", "repurchase"]'):
        monkeypatch.setenv("GUANXI_TASKS", given)
        assert Settings(home=tmp_path).tasks[0] == "churn", given
    monkeypatch.setenv("GUANXI_TASKS", "churn,chrun")
    with pytest.raises(ValidationError) as e:
        Settings(home=tmp_path)
    assert (  # heavy35: and the task it may be meant for
        "GUANXI_TASKS: unknown task 'chrun' (is it 'churn'?); the known tasks are churn, "
        'repurchase, cross_sell, referral (comma-separated, "churn,repurchase", or a JSON list)'
    ) in str(e.value)
    monkeypatch.setenv("GUANXI_TASKS", ",")
    with pytest.raises(ValidationError, match="GUANXI_TASKS names no task"):
        Settings(home=tmp_path)


def test_every_missing_secret_is_named_at_once(tmp_path: Path) -> None:
    """A first ``guanxi serve`` without --dev named GUANXI_API_KEYS; set, then the audit key,
    then the session key, then the store key: four attempts to learn what one could say."""
    with pytest.raises(ValueError) as e:
        Settings(home=tmp_path, session_key=SecretStr("s" * 32)).check_serving()
    assert str(e.value) == (
        "GUANXI_API_KEYS is empty: set key:role pairs, or start with --dev; "
        "GUANXI_AUDIT_KEY must be set to a secret of at least 32 characters (no default works "
        "outside --dev); GUANXI_STORE_KEY must be set to a secret of at least 32 characters (no "
        "default works outside --dev); e.g. python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'"
    )


def test_cookie_secure_and_api_docs_default_by_mode(tmp_path: Path) -> None:
    production, dev = Settings(home=tmp_path), Settings(home=tmp_path, dev=True)
    assert production.secure_cookie and not dev.secure_cookie
    assert not production.docs_enabled and dev.docs_enabled
    assert not Settings(home=tmp_path, cookie_secure=False).secure_cookie
    assert Settings(home=tmp_path, api_docs=True).docs_enabled


def test_session_secret_is_independent_of_the_audit_key(tmp_path: Path) -> None:
    from serving.ui.session import session_secret

    one = Settings(home=tmp_path, audit_key=SecretStr("a" * 32), session_key=SecretStr("s" * 32))
    other_audit = Settings(
        home=tmp_path, audit_key=SecretStr("b" * 32), session_key=SecretStr("s" * 32)
    )
    other_session = Settings(
        home=tmp_path, audit_key=SecretStr("a" * 32), session_key=SecretStr("t" * 32)
    )
    assert session_secret(one) == session_secret(other_audit)  # the audit key rotates alone
    assert session_secret(one) != session_secret(other_session)


def test_api_keys_are_parsed_by_the_settings_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GUANXI_API_KEYS", "top-secret-1:scorer, top-secret-2:admin")
    settings = Settings(home=tmp_path)
    assert settings.keys == {"top-secret-1": Role.scorer, "top-secret-2": Role.admin}
    assert "top-secret" not in repr(settings) and "top-secret" not in str(settings)
    monkeypatch.setenv("GUANXI_API_KEYS", "top-secret-1:root")
    with pytest.raises(ValidationError, match="unknown role 'root'") as err:
        Settings(home=tmp_path)
    assert "top-secret" not in str(err.value)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GUANXI_HOME", str(tmp_path))
    monkeypatch.setenv("GUANXI_API_KEYS", "k1:scorer")
    monkeypatch.setenv("GUANXI_AUDIT_KEY", "a" * 20)
    monkeypatch.setenv("GUANXI_MAX_BODY_BYTES", "123")
    monkeypatch.setenv("GUANXI_TASKS", '["churn"]')
    get_settings.cache_clear()
    try:
        s = get_settings()
        assert s is get_settings()
        assert s.home == tmp_path and s.max_body_bytes == 123 and s.tasks == ("churn",)
        assert s.keys == {"k1": Role.scorer}
        assert "k1" not in repr(s) and "a" * 20 not in repr(s)
    finally:
        get_settings.cache_clear()
    monkeypatch.setenv("GUANXI_TASKS", '["churn", "nope"]')
    with pytest.raises(ValidationError, match="unknown task 'nope'"):
        Settings()


def test_keyring() -> None:
    ring = KeyRing({"alpha-key": Role.scorer, "beta-key": Role.admin})
    assert ring.role_of("alpha-key") is Role.scorer
    assert ring.role_of("beta-key") is Role.admin
    assert ring.role_of("alpha-ke") is None
    assert ring.role_of("") is None and ring.role_of(None) is None
    assert ring.role_of("ключ") is None


def test_worker_healthcheck_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor's health-check timeout (guanxi serve, several workers): 60 s unless set,
    read from GUANXI_WORKER_HEALTHCHECK_SECONDS, and refused when not positive."""
    monkeypatch.delenv("GUANXI_WORKER_HEALTHCHECK_SECONDS", raising=False)
    assert Settings().worker_healthcheck_seconds == 60
    monkeypatch.setenv("GUANXI_WORKER_HEALTHCHECK_SECONDS", "90")
    assert Settings().worker_healthcheck_seconds == 90
    for bad in ("0", "-5", "soon"):
        monkeypatch.setenv("GUANXI_WORKER_HEALTHCHECK_SECONDS", bad)
        with pytest.raises(ValidationError, match="worker_healthcheck_seconds"):
            Settings()


def test_max_batch_is_at_most_what_the_request_schema_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """heavy28: GUANXI_MAX_BATCH above 1000 was accepted, though POST /v1/scores refuses more
    than serving.schemas.MAX_BATCH ids whatever it says; it is refused as a settings error."""
    monkeypatch.setenv("GUANXI_MAX_BATCH", str(MAX_BATCH))
    assert Settings().max_batch == MAX_BATCH
    monkeypatch.setenv("GUANXI_MAX_BATCH", str(MAX_BATCH + 1))
    with pytest.raises(ValidationError, match=rf"max_batch\n.*less than or equal to {MAX_BATCH}"):
        Settings()
