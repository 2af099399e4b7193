"""Fixtures for the Microsoft side (a pytest plugin loaded by tests/conftest.py).

``microsoft_sims``: the Entra ID and Dataverse simulators over HTTPS on a fresh local CA, module scope (one
pair per test module); ``ms``: the same, reset for the test (fresh directory and keys, no notes, no faults).
``ms_settings``: MicrosoftSettings pointing the service at them (JWKS refresh cooldown 0, so that a rotated key
is fetched at once).
"""

from __future__ import annotations

import pytest

from service.microsoft.config import MicrosoftSettings
from service.sandbox.microsoft import start_in_process


@pytest.fixture(scope="module")
def microsoft_sims(tmp_path_factory):
    running = start_in_process(tmp_path_factory.mktemp("tls"))
    yield running
    running.stop()


@pytest.fixture
def ms(microsoft_sims):
    microsoft_sims.entra.reset()
    microsoft_sims.dataverse.reset()
    microsoft_sims.dataverse_faults.clear()
    microsoft_sims.dataverse_faults.reset_stats()
    return microsoft_sims


@pytest.fixture
def ms_settings(ms) -> MicrosoftSettings:
    return MicrosoftSettings(sandbox_entra_url=ms.entra_url, sandbox_dataverse_url=ms.dataverse_url,
                             sandbox_ca_bundle=ms.ca_path, jwks_refresh_cooldown_seconds=0.0)
