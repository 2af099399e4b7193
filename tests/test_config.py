import pytest

from service.config import ConfigError, Settings


def test_defaults_are_sandbox_spotler():
    s = Settings.from_env({})
    assert s.provider == "spotler"
    assert s.mode == "sandbox"
    assert s.accepted_api_keys == ("sandbox",)
    assert s.flask_threads == 32


@pytest.mark.parametrize("env, variable", [
    ({"PROVIDER": "mailchimp"}, "PROVIDER"),
    ({"FLASK_THREADS": "lots"}, "FLASK_THREADS"),
    ({"FLASK_THREADS": "0"}, "FLASK_THREADS"),
    ({"JOB_LEASE_SECONDS": "-1"}, "JOB_LEASE_SECONDS"),
    ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
    ({"MAX_BODY_BYTES": "12"}, "MAX_BODY_BYTES"),
])
def test_invalid_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(env)
    assert variable in str(exc.value)


def test_live_mode_requires_api_keys():
    with pytest.raises(ConfigError, match="API_KEYS"):
        Settings.from_env({"SPOTLER_CONSUMER_KEY": "ck", "SPOTLER_CONSUMER_SECRET": "cs"})


def test_live_mode_requires_the_second_credential():
    env = {"SPOTLER_CONSUMER_KEY": "ck", "API_KEYS": "k" * 20, "LEDGER_HASH_KEY": "h" * 40}
    with pytest.raises(ConfigError, match="SPOTLER_CONSUMER_SECRET"):
        Settings.from_env(env)


def test_live_mode_rejects_short_keys_and_missing_hash_key():
    base = {"SPOTLER_CONSUMER_KEY": "ck", "SPOTLER_CONSUMER_SECRET": "cs"}
    with pytest.raises(ConfigError, match="API_KEYS"):
        Settings.from_env({**base, "API_KEYS": "short", "LEDGER_HASH_KEY": "h" * 40})
    with pytest.raises(ConfigError, match="LEDGER_HASH_KEY"):
        Settings.from_env({**base, "API_KEYS": "k" * 20})


def test_live_mode_requires_a_trigger_state_secret():
    base = {"SPOTLER_CONSUMER_KEY": "ck", "SPOTLER_CONSUMER_SECRET": "cs", "API_KEYS": "k" * 20,
            "LEDGER_HASH_KEY": "h" * 40}
    with pytest.raises(ConfigError, match=r"Missing setting TRIGGER_STATE_SECRET .*32\+ characters"):
        Settings.from_env(base)
    with pytest.raises(ConfigError, match=r"Invalid setting TRIGGER_STATE_SECRET=<hidden") as exc:
        Settings.from_env({**base, "TRIGGER_STATE_SECRET": "t" * 32 + ",short"})
    assert "short" not in str(exc.value)
    rotated = Settings.from_env({**base, "TRIGGER_STATE_SECRET": "old" * 11 + ", " + "new" * 11})
    assert rotated.trigger_state_secrets == ("old" * 11, "new" * 11)  # oldest first; the last one signs


def test_live_mode_with_everything_set():
    env = {"SPOTLER_CONSUMER_KEY": "ck", "SPOTLER_CONSUMER_SECRET": "cs", "API_KEYS": "a" * 16 + ", " + "b" * 16,
           "LEDGER_HASH_KEY": "h" * 40, "TRIGGER_STATE_SECRET": "t" * 40}
    s = Settings.from_env(env)
    assert s.mode == "live"
    assert s.api_keys == ("a" * 16, "b" * 16)
    assert s.accepted_api_keys == s.api_keys  # no sandbox key in live mode


def test_sandbox_with_keys_does_not_accept_the_sandbox_key():
    s = Settings.from_env({"API_KEYS": "mine"})
    assert s.accepted_api_keys == ("mine",)


def test_provider_selects_its_own_credentials():
    s = Settings.from_env({"PROVIDER": "spoki", "SPOTLER_CONSUMER_KEY": "ck"})
    assert s.mode == "sandbox"  # Spotler credentials do not make a Spoki deployment live


def test_live_mode_names_every_missing_setting_in_one_message():
    """Issue #24: going live reported one missing setting per start (API_KEYS, then SPOTLER_CONSUMER_SECRET, then
    LEDGER_HASH_KEY, then TRIGGER_STATE_SECRET: four failed starts)."""
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"SPOTLER_CONSUMER_KEY": "ck-live"})
    message = str(exc.value)
    assert "\n" not in message
    for name in ("API_KEYS", "SPOTLER_CONSUMER_SECRET", "LEDGER_HASH_KEY", "TRIGGER_STATE_SECRET"):
        assert f"Missing setting {name} (" in message, message
    assert "ck-live" not in message


def test_secrets_stay_out_of_the_settings_repr():
    s = Settings.from_env({"SPOTLER_CONSUMER_KEY": "ck", "SPOTLER_CONSUMER_SECRET": "cs", "API_KEYS": "a" * 16,
                           "LEDGER_HASH_KEY": "h" * 40, "TRIGGER_STATE_SECRET": "t" * 40})
    assert "a" * 16 not in repr(s) and "h" * 40 not in repr(s) and "t" * 40 not in repr(s)


def test_env_example_is_written_from_the_declarations():
    """.env.example is what ``python -m service.env_example`` writes from the one declaration of each setting."""
    from service.env_example import PATH, render

    assert PATH.read_text(encoding="utf-8") == render(), "run: .venv/bin/python -m service.env_example"


def test_env_example_documents_every_variable():
    """Every setting and every platform config field has its line in .env.example."""
    import dataclasses
    from pathlib import Path

    from service.config import declared_variables
    from service.providers.piggy import PiggyConfig
    from service.providers.spoki import SpokiConfig
    from service.providers.spotler import SpotlerConfig

    documented = {line.split("=", 1)[0] for line in (Path(__file__).parent.parent / ".env.example").read_text()
                  .splitlines() if line and not line.startswith("#") and "=" in line}
    expected = {var.name for var in declared_variables()}
    assert {"PROVIDER", "FLASK_THREADS", "ENTRA_CLIENT_ID", "PORT"} <= expected
    from service.providers.piggy.webhooks import PiggyWebhookConfig
    from service.providers.spoki.webhooks import SpokiWebhookConfig

    for prefix, cls in (("SPOTLER", SpotlerConfig), ("PIGGY", PiggyConfig), ("SPOKI", SpokiConfig),
                        ("PIGGY_WEBHOOK", PiggyWebhookConfig), ("SPOKI_WEBHOOK", SpokiWebhookConfig)):
        expected |= {f"{prefix}_{f.name.upper()}" for f in dataclasses.fields(cls) if f.init}
    assert expected - documented == set()
