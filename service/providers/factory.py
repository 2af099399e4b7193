"""Build the configured provider from Settings - the only place that knows every platform.

Each platform's config dataclass is filled from ``<PLATFORM>_<FIELD>`` environment variables (for example
``SPOTLER_READ_TIMEOUT`` -> ``SpotlerConfig.read_timeout``), converted to the field's type; the shared
``UPSTREAM_*`` settings are the defaults for timeouts and retries. In sandbox mode the base URL is the
simulator's and the credentials are the sandbox account's.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from service.config import ConfigError, Settings
from service.providers.base import Provider
from service.providers.errors import ConfigValueError
from service.providers.webhooks import WebhookFormat, WebhookManager

#: provider -> (module, config class, provider class, sandbox credential mapping {config field: sandbox key})
_PLATFORMS = {
    "spotler": ("service.providers.spotler", "SpotlerConfig", "SpotlerProvider",
                {"consumer_key": "consumer_key", "consumer_secret": "consumer_secret"}),
    "piggy": ("service.providers.piggy", "PiggyConfig", "PiggyProvider", {"api_token": "token"}),
    "spoki": ("service.providers.spoki", "SpokiConfig", "SpokiProvider", {"api_key": "api_key"}),
}

SHARED_SETTINGS = {  # config field -> Settings attribute, used when the platform-specific variable is not set
    "connect_timeout": "upstream_connect_timeout",
    "read_timeout": "upstream_read_timeout",
    "max_retries": "upstream_max_retries",
    "retry_after_max": "upstream_retry_after_max",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(raw: str, default: Any, var: str) -> Any:
    try:
        if isinstance(default, bool):
            low = raw.strip().lower()
            if low not in _TRUE | _FALSE:
                raise ValueError
            return low in _TRUE
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        allowed = ("true or false" if isinstance(default, bool)
                   else "a whole number" if isinstance(default, int) else "a number")
        raise ConfigError.invalid(var, raw, allowed) from None
    return raw


def config_class(provider: str) -> type:
    """The platform's config dataclass: its fields are the ``<PLATFORM>_<FIELD>`` variables."""
    module_name, config_cls_name, _, _ = _PLATFORMS[provider]
    return getattr(importlib.import_module(module_name), config_cls_name)


def provider_config(settings: Settings, *, sandbox_url: str | None = None):
    """The platform's config dataclass, from the environment. Raises ConfigError naming the variable."""
    sandbox_fields = _PLATFORMS[settings.provider][3]
    config_cls = config_class(settings.provider)
    prefix = settings.provider.upper() + "_"
    values = _values_from_env(settings, config_cls, prefix, shared=SHARED_SETTINGS)
    if settings.sandbox:
        from service.sandbox.launch import SANDBOX_CREDENTIALS

        creds = SANDBOX_CREDENTIALS[settings.provider]
        for field_name, key in sandbox_fields.items():
            values[field_name] = creds[key]
        if sandbox_url:
            values["base_url"] = sandbox_url
    try:
        return config_cls(**values)
    except ConfigValueError as exc:
        var = prefix + exc.field.upper()
        value = settings.platform_env.get(var) or str(values.get(exc.field, ""))
        raise ConfigError.invalid(var, value, exc.allowed) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Invalid settings {prefix}*: {exc}", variable=prefix + "*") from None


def _values_from_env(settings: Settings, config_cls: type, prefix: str,
                     shared: dict[str, str] | None = None) -> dict[str, Any]:
    """Constructor arguments of ``config_cls`` from the ``<prefix><FIELD>`` variables (shared defaults first)."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        var = prefix + f.name.upper()
        default = f.default if f.default is not dataclasses.MISSING else None
        if shared and f.name in shared:
            values[f.name] = getattr(settings, shared[f.name])
        raw = settings.platform_env.get(var)
        if raw not in (None, ""):
            values[f.name] = _convert(raw, default if default is not None else "", var)
    return values


#: platform -> (module, webhook config class, format class, manager class) of platforms that push webhooks
_WEBHOOKS = {
    "piggy": ("service.providers.piggy.webhooks", "PiggyWebhookConfig", "PiggyWebhookFormat", "PiggyWebhookManager"),
    "spoki": ("service.providers.spoki.webhooks", "SpokiWebhookConfig", "SpokiWebhookFormat", "SpokiWebhookManager"),
}


#: the platforms that push webhooks
WEBHOOK_PLATFORMS = tuple(_WEBHOOKS)


def has_webhooks(platform: str) -> bool:
    return platform in _WEBHOOKS


def webhook_config_class(platform: str) -> type | None:
    """The platform's webhook config dataclass (its fields are the ``<PLATFORM>_WEBHOOK_<FIELD>`` variables), or
    None for a platform without webhooks."""
    if platform not in _WEBHOOKS:
        return None
    module_name, config_name, _, _ = _WEBHOOKS[platform]
    return getattr(importlib.import_module(module_name), config_name)


def webhook_format(settings: Settings, platform: str | None = None) -> WebhookFormat:
    """The webhook format (events, signature check) of ``platform`` (default: the configured one), from
    ``<PLATFORM>_WEBHOOK_*``."""
    platform = platform or settings.provider
    module_name, _, format_name, _ = _WEBHOOKS[platform]
    module = importlib.import_module(module_name)
    config_cls = webhook_config_class(platform)
    prefix = platform.upper() + "_WEBHOOK_"
    try:
        config = config_cls(**_values_from_env(settings, config_cls, prefix))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Invalid settings {prefix}*: {exc}", variable=prefix + "*") from None
    return getattr(module, format_name)(config)


def webhook_manager(fmt: WebhookFormat, provider: Provider) -> WebhookManager:
    """The webhook-management API of ``provider``'s account, through its client (one session per account)."""
    module_name, _, _, manager_name = _WEBHOOKS[provider.name]
    manager_cls = getattr(importlib.import_module(module_name), manager_name)
    if provider.name == "piggy":
        return manager_cls(provider.client, provider.config, fmt.config)
    return manager_cls(provider.client, fmt.config)


def check_platform_settings(settings: Settings) -> None:
    """Build the platform's config once (no network), so that a bad ``<PLATFORM>_*`` variable stops the start
    in live and in sandbox mode alike."""
    if settings.hosted:
        for platform in _WEBHOOKS:
            webhook_format(settings, platform)
        return
    provider_config(settings)
    if has_webhooks(settings.provider):
        webhook_format(settings)


def build_provider(settings: Settings, *, sandbox_url: str | None = None) -> Provider:
    module_name, _, provider_cls_name, _ = _PLATFORMS[settings.provider]
    provider_cls = getattr(importlib.import_module(module_name), provider_cls_name)
    return provider_cls(provider_config(settings, sandbox_url=sandbox_url))


#: hosted mode: the config fields a connection's (key, secret) fill, by platform
_CONNECTION_FIELDS = {"spotler": ("consumer_key", "consumer_secret"), "piggy": ("api_token", None),
                      "spoki": ("api_key", None)}
#: config fields that hold an account's credentials (never taken from the environment in hosted mode)
_CREDENTIAL_FIELDS = frozenset({"consumer_key", "consumer_secret", "api_token", "client_id", "client_secret",
                                "api_key"})


def build_provider_for(settings: Settings, platform: str, key: str, secret: str | None = None, *,
                       sandbox_url: str | None = None) -> Provider:
    """Hosted mode: a provider for one account of ``platform`` (the connection's ``key`` and ``secret``), with the
    environment's ``<PLATFORM>_*`` tuning (timeouts, retries) and, in sandbox mode, the simulator's URL. A value
    the platform's config refuses is a ValueError naming the config field (no credential in it)."""
    module_name, config_cls_name, provider_cls_name, _ = _PLATFORMS[platform]
    module = importlib.import_module(module_name)
    config_cls = getattr(module, config_cls_name)
    values = {k: v for k, v in _values_from_env(settings, config_cls, platform.upper() + "_",
                                                 shared=SHARED_SETTINGS).items() if k not in _CREDENTIAL_FIELDS}
    key_field, secret_field = _CONNECTION_FIELDS[platform]
    values[key_field] = key
    if secret_field:
        values[secret_field] = secret
    if sandbox_url:
        values["base_url"] = sandbox_url
    try:
        config = config_cls(**values)
    except ConfigValueError as exc:
        raise ValueError(f"invalid {exc.field}: {exc.allowed}") from None
    return getattr(module, provider_cls_name)(config)
