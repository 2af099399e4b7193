"""The try-it-out page (``/ui``) in a real headless browser: Debian's chromium driven by selenium.

The service listens on an ephemeral port (never 8000) over plain HTTP, as ``make run`` does: the page must
send its "Try it out" requests there. One browser session for the module: authorize with the sandbox key,
then TestConnection and StartAutomation each answer 200.

The browser is installed by ``make test`` (Debian packages ``chromium`` and ``chromium-driver``). Without it
the test skips locally and FAILS in CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from service.config import Settings
from service.sandbox.spotler import DEMO
from tests.servers import serve_app

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
WAIT_S = 30


def _browser_missing() -> str | None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not (p.is_file() and os.access(p, os.X_OK))]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return ", ".join(missing) or None


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """The app under uvicorn on 127.0.0.1:<ephemeral>, in a thread, sandbox mode with its own ledger."""
    settings = Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('ui')}/ledger.db")
    with serve_app(settings) as (url, _app):
        yield url


@pytest.fixture(scope="module")
def browser():
    missing = _browser_missing()
    if missing:
        reason = f"the /ui browser test needs {missing} (`make test` installs chromium and chromium-driver)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # with the driver's path below: no Selenium Manager download
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,2000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def _wait(driver, condition, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(condition)
    except TimeoutException:
        shot = Path(os.environ.get("UI_TEST_SCREENSHOT", "/tmp/ui-test-failure.png"))
        driver.save_screenshot(str(shot))
        raise AssertionError(f"/ui: {what} did not happen within {WAIT_S} s (screenshot: {shot})") from None


def _visible(driver, css: str, within=None):
    from selenium.webdriver.common.by import By

    root = within or driver

    def find(_):
        for el in root.find_elements(By.CSS_SELECTOR, css):
            if el.is_displayed() and el.is_enabled():
                return el
        return False

    return _wait(driver, find, f"{css!r} to appear")


def _try_operation(driver, op_id: str, *, params: dict[str, str] | None = None, body: dict | None = None) -> str:
    """Open operation ``op_id``, "Try it out", fill it in, "Execute"; returns the live response's status."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    block = _visible(driver, f"[id^='operations-'][id$='-{op_id}']")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", block)
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    _visible(driver, "button.try-out__btn", within=block).click()
    for name, value in (params or {}).items():
        field = _visible(driver, f"tr[data-param-name='{name}'] input", within=block)
        field.clear()
        field.send_keys(value)
    if body is not None:
        area = _visible(driver, "textarea.body-param__text", within=block)
        text = json.dumps(body)
        _wait(driver, lambda _: area.get_attribute("value"), "the example request body")
        # type over the selected example: an emptied body field would be reset to "{}" by the page
        area.send_keys(Keys.CONTROL, "a")
        area.send_keys(text)
        _wait(driver, lambda _: area.get_attribute("value") == text, "typing the request body")
    _visible(driver, "button.execute", within=block).click()
    cell = _visible(driver, ".live-responses-table tr.response .response-col_status", within=block)
    return cell.text.strip().split()[0]


def test_try_it_out_reaches_the_service_that_serves_the_page(base_url, browser):
    assert not base_url.endswith(":8000")  # the spec file says localhost:8000: the page must not use that
    browser.get(base_url + "/ui/")
    # authorize with the sandbox key
    _visible(browser, ".auth-wrapper button.authorize").click()
    modal = _visible(browser, ".modal-ux")
    _visible(browser, "input", within=modal).send_keys("sandbox")
    _visible(browser, ".auth-btn-wrapper button.authorize", within=modal).click()
    _visible(browser, ".auth-btn-wrapper button.btn-done", within=modal).click()

    assert _try_operation(browser, "TestConnection") == "200"
    status = _try_operation(browser, "StartAutomation", params={"automationId": DEMO.automations["welcome"]},
                            body={"contact": {"email": DEMO.emails["jan"]}, "fieldsText": "voucherCode=UI10"})
    assert status == "200"
    # the page's request went to the page's own origin: the curl line it shows names it
    curl = browser.find_element("css selector", "[id$='-StartAutomation'] .curl").text
    assert f"{base_url}/automations/{DEMO.automations['welcome']}/start" in curl


def test_browser_install_is_wired_into_make_test():
    """`make test` installs the browser when it is missing (the test above relies on it)."""
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "test: $(STAMP) browser" in makefile
    assert "apt-get -qq install -y --no-install-recommends chromium chromium-driver" in makefile
