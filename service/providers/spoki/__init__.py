"""Spoki provider: ``SpokiProvider(SpokiConfig(api_key=...))``."""

from service.providers.spoki.config import SpokiConfig
from service.providers.spoki.provider import SpokiProvider

__all__ = ["SpokiConfig", "SpokiProvider"]
