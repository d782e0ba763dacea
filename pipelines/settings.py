"""Typed settings of the batch jobs and the CLI, read from ``GUANXI_*`` environment variables.

Nothing is read at import time: :func:`get_settings` builds the settings on first call and caches
them. Tests set the environment (e.g. ``GUANXI_HOME``) and call ``get_settings.cache_clear()``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """Settings of the ``guanxi`` jobs.

    Parameters
    ----------
    home : pathlib.Path
        The store's root directory (``GUANXI_HOME``): snapshots, scores and the audit log.
    """

    model_config = SettingsConfigDict(env_prefix="GUANXI_", extra="ignore")

    home: Path = Path(".guanxi")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the settings, read from the environment on the first call.

    Returns
    -------
    Settings
        The same object on every call until ``get_settings.cache_clear()``.
    """
    return Settings()
