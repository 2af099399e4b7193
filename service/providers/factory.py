"""Build the configured provider from Settings (environment) - the only place that knows every platform."""

from __future__ import annotations

from service.config import Settings
from service.providers.base import Provider


def build_provider(settings: Settings, *, sandbox_url: str | None = None) -> Provider:
    builder = {"spotler": _spotler, "piggy": _piggy, "spoki": _spoki}[settings.provider]
    return builder(settings, sandbox_url)


def _spotler(settings: Settings, sandbox_url: str | None) -> Provider:
    raise NotImplementedError


def _piggy(settings: Settings, sandbox_url: str | None) -> Provider:
    raise NotImplementedError


def _spoki(settings: Settings, sandbox_url: str | None) -> Provider:
    raise NotImplementedError
