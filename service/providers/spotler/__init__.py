"""Spotler Mail+ adapter: low-level client (resource calls; transport), tolerant schemas, configurable assumed wire formats, provider."""

from service.providers.spotler.client import SpotlerClient
from service.providers.spotler.config import DEFAULT_BASE_URL, SpotlerConfig
from service.providers.spotler.paths import WireFormatError
from service.providers.spotler.provider import SpotlerProvider, generated_external_id

__all__ = [
    "DEFAULT_BASE_URL",
    "SpotlerClient",
    "SpotlerConfig",
    "SpotlerProvider",
    "WireFormatError",
    "generated_external_id",
]
