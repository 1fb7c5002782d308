"""The console in a real browser: Debian's chromium, headless, driven by selenium.

A gateway with the shipped engine on 127.0.0.1; the browser opens `/` (sent to `/console/`),
uploads a synthetic card photo, and the page's masked number and its Tencent and Face++ tabs
must show what those vendors' clients get from the same gateway for the same photo; Reveal
shows the whole number; a compare report opens; arrow keys move between tabs; at phone width
nothing overflows. Screenshots go to the test's temporary folder. Skips, saying why, where
chromium, its driver, selenium or the weights are missing (.ci/run installs chromium with apt).
"""
from __future__ import annotations

import base64
import json
import os
import shutil

import pytest

from gateway.app import create_app
from tests.test_console import real_engine, synthetic_photo  # noqa: F401  (real_engine: a fixture)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

NUMBER = "6225760088888883"
CHROMIUM = next((p for p in ("chromium", "chromium-browser", "google-chrome") if shutil.which(p)), None)
DRIVER = shutil.which("chromedriver") or next((p for p in ("/usr/lib/chromium/chromedriver",) if os.path.exists(p)), None)

pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)")


def masked(number: str) -> str:
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.binary_location = shutil.which(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    except Exception as exc:  # a chromium that cannot start here (no display libraries, ...)
        pytest.skip(f"chromium did not start: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def sdk_answers(base_url: str, photo: bytes) -> dict[str, str]:
    """The card number the Tencent SDK and a Face++ client get for `photo` from this gateway."""
    import requests
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.ocr.v20181119 import models, ocr_client

    http = HttpProfile(protocol="http", endpoint=base_url.split("://")[1], reqTimeout=30)
    client = ocr_client.OcrClient(credential.Credential("AKIDANY", "any-key"), "ap-guangzhou", ClientProfile(httpProfile=http))
    req = models.BankCardOCRRequest()
    req.ImageBase64 = base64.b64encode(photo).decode()
    tencent = client.BankCardOCR(req).CardNo
    facepp = requests.post(f"{base_url}/cardpp/v1/ocrbankcard", data={"api_key": "k", "api_secret": "s"},
                           files={"image_file": ("card.jpg", photo)}, timeout=30).json()
    return {"tencent": tencent, "facepp": facepp["bank_cards"][0]["number"]}


def tab_body(driver, name: str) -> dict:
    driver.find_element(By.ID, f"tab-{name}").click()
    panel = driver.find_element(By.ID, f"panel-{name}")
    return json.loads(panel.find_elements(By.TAG_NAME, "pre")[0].text)


def digits_and_stars(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit() or ch == "*")


def test_the_console_in_chromium(browser, live_gateway, real_engine, tmp_path):  # noqa: F811
    photo = synthetic_photo(NUMBER)
    base_url = live_gateway(create_app({}, real_engine))
    expected = sdk_answers(base_url, photo)
    assert expected["tencent"] == NUMBER  # the SDK reads this photo; the page must say the same
    (tmp_path / "card.jpg").write_bytes(photo)
    wait = WebDriverWait(browser, 60)

    browser.get(base_url + "/")
    assert browser.current_url == base_url + "/console/"
    browser.find_element(By.ID, "photo").send_keys(str(tmp_path / "card.jpg"))
    wait.until(lambda d: d.find_element(By.ID, "tab-tencent"))
    wait.until(lambda d: d.find_element(By.ID, "status").text == "Read.")

    assert digits_and_stars(browser.find_element(By.ID, "number").text) == masked(NUMBER)
    assert tab_body(browser, "tencent")["Response"]["CardNo"] == masked(expected["tencent"])
    assert digits_and_stars(tab_body(browser, "facepp")["bank_cards"][0]["number"]) == masked(digits_and_stars(expected["facepp"]))
    assert browser.find_elements(By.CSS_SELECTOR, "#photo-view polygon.outline")  # the card outline is drawn
    browser.save_screenshot(str(tmp_path / "console-masked.png"))

    browser.find_element(By.ID, "reveal").click()
    wait.until(lambda d: digits_and_stars(d.find_element(By.ID, "number").text) == NUMBER)
    wait.until(lambda d: d.find_element(By.ID, "status").text == "Read.")
    assert tab_body(browser, "tencent")["Response"]["CardNo"] == expected["tencent"]
    assert tab_body(browser, "facepp")["bank_cards"][0]["number"] == expected["facepp"]

    # Keyboard: from the selected tab, the right arrow selects and focuses the next one.
    tabs = browser.find_elements(By.CSS_SELECTOR, "[role=tab]")
    tabs[0].click()
    tabs[0].send_keys(Keys.ARROW_RIGHT)
    assert browser.switch_to.active_element == tabs[1] and tabs[1].get_attribute("aria-selected") == "true"
    browser.save_screenshot(str(tmp_path / "console-revealed.png"))

    browser.set_window_size(390, 844)  # a phone
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    browser.save_screenshot(str(tmp_path / "console-phone.png"))
    assert overflow <= 1

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors  # no script error, no CSP refusal


def test_the_report_page_shows_a_compare_report(browser, live_gateway, tmp_path):
    from gateway.migrate.report import summarize
    from tests.fakes import FakeEngine

    side = {"status": 200, "latency_ms": 80.0, "failure": None, "number": "622576******8883", "expiry": "08/30",
            "bank": "招商银行", "kind": "贷记卡", "warnings": [], "error_code": None}
    other = dict(side, expiry="08/31", latency_ms=120.0)
    records = [
        {"id": "a.jpg", "dialect": "tencent", "sides": {"local": side, "upstream": side},
         "fields": {"number": True, "expiry": True, "bank": True, "kind": True, "warnings": True, "error_code": True}, "agree": True},
        {"id": "b.jpg", "dialect": "tencent", "sides": {"local": side, "upstream": other},
         "fields": {"number": True, "expiry": False, "bank": True, "kind": True, "warnings": True, "error_code": True}, "agree": False},
    ]
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"summary": summarize(records), "records": records}, ensure_ascii=False))
    base_url = live_gateway(create_app({}, FakeEngine()))

    browser.get(base_url + "/console/report.html")
    browser.find_element(By.ID, "report-file").send_keys(str(path))
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "report").is_displayed())
    rows = {r.find_elements(By.TAG_NAME, "td")[0].text: [c.text for c in r.find_elements(By.TAG_NAME, "td")]
            for r in browser.find_elements(By.CSS_SELECTOR, "#fields-table tbody tr")}
    assert rows["expiry"] == ["expiry", "2", "1", "50.0%"] and rows["number"][-1] == "100.0%"
    shown = browser.find_element(By.ID, "records-table").text
    assert "b.jpg" in shown and "a.jpg" not in shown  # only the disagreement, by default
    (tmp_path / "b.jpg").write_bytes(synthetic_photo(NUMBER))
    browser.find_element(By.ID, "report-images").send_keys(str(tmp_path / "b.jpg"))
    thumb = WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "#records-table img.thumb"))
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", thumb) > 0
    browser.save_screenshot(str(tmp_path / "report.png"))
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
