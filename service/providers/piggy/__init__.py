"""Piggy (Leat) provider: ``PiggyProvider(PiggyConfig(...))``."""

from service.providers.piggy.config import PiggyConfig
from service.providers.piggy.provider import PiggyProvider

__all__ = ["PiggyConfig", "PiggyProvider"]
