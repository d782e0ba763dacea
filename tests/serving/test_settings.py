"""Settings and keys: parsing, refusals outside dev mode, constant-time key checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from serving.app import create_app
from serving.deps import KeyRing
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
    with pytest.raises(ValueError, match="GUANXI_API_KEYS is empty"):
        Settings(home=tmp_path, audit_key=SecretStr("x" * 32)).check_serving()
    with pytest.raises(ValueError, match="GUANXI_AUDIT_KEY must be set"):
        Settings(home=tmp_path, api_keys=SecretStr("k:admin")).check_serving()
    with pytest.raises(ValueError, match="GUANXI_AUDIT_KEY must be set"):
        Settings(home=tmp_path, api_keys="k:admin", audit_key=SecretStr("short")).check_serving()
    with pytest.raises(ValueError, match="GUANXI_API_KEYS is empty"):
        create_app(Settings(home=tmp_path))  # the app factory refuses too
    assert Settings(home=tmp_path, dev=True).check_serving().keys == {}
    # a batch job reads the same settings and needs no key
    assert Settings(home=tmp_path).home == tmp_path


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
    with pytest.raises(ValidationError, match="unknown tasks"):
        Settings()


def test_keyring() -> None:
    ring = KeyRing({"alpha-key": Role.scorer, "beta-key": Role.admin})
    assert ring.role_of("alpha-key") is Role.scorer
    assert ring.role_of("beta-key") is Role.admin
    assert ring.role_of("alpha-ke") is None
    assert ring.role_of("") is None and ring.role_of(None) is None
    assert ring.role_of("ключ") is None
