"""The board's page, its header and live figures (ui/live.js, ui/chart.js), in headless Chromium
against the real service: the header says what the board is, the plots fill in while a load runs,
a hidden tab asks the board nothing, and without the token the part waits for it calmly. Each
plot's <figure> carries what it shows as data-latest and data-models, so the test reads the
figures without reading pixels."""
import threading
import time

import pytest
import requests

import uipage
from conftest import PAGE_TOKEN
from edgeapp import __version__
from textimages import encode, text_line

LOAD_MIDS = (2, 4)        # text direction and face: a few milliseconds each
LOAD_REQUESTS = 40        # the load is bounded in count ...
LOAD_SECONDS = 8.0        # ... and in time: a handful of the service's 2 s samples
PLOTS = ("rate", "latency", "queue", "refused", "memory", "restarts")


class Load(threading.Thread):
    """Up to LOAD_REQUESTS inferences over LOAD_SECONDS, alternating LOAD_MIDS, on 127.0.0.1 only."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.statuses = url, []
        self.body = encode(text_line("EDGE 27"), ".jpg")

    def run(self):
        end = time.monotonic() + LOAD_SECONDS
        with requests.Session() as http:
            for i in range(LOAD_REQUESTS):
                if time.monotonic() > end:
                    break
                mid = LOAD_MIDS[i % len(LOAD_MIDS)]
                r = http.post(self.url + "/api/model/service/binary?mid=%d" % mid, data=self.body, timeout=10,
                              headers={"Authorization": "Bearer " + PAGE_TOKEN, "Content-Type": "image/jpeg"})
                self.statuses.append(r.status_code)
                time.sleep(LOAD_SECONDS / LOAD_REQUESTS)


@pytest.fixture
def page_token_kept(page_server, browser):
    """Leaves page_server's token state (its origin's session storage) as this test found it. Read
    and put back from /api/health, a page of that origin without scripts: no poll of the page runs
    with a token that is about to change (a 401 would be a console error in the next test)."""
    browser.get(page_server.url + "/api/health")
    before = browser.execute_script("return sessionStorage.getItem('edgeapp.token')")
    yield
    browser.get(page_server.url + "/api/health")
    browser.execute_script("arguments[0] === null ? sessionStorage.removeItem('edgeapp.token')"
                           " : sessionStorage.setItem('edgeapp.token', arguments[0])", before)


def plot(browser, key):
    """{latest, models, caption} of the plot `key`, as the page shows it."""
    from selenium.webdriver.common.by import By
    fig = browser.find_element(By.CSS_SELECTOR, "#live figure[data-plot=%s]" % key)
    models = fig.get_attribute("data-models")
    return {"latest": fig.get_attribute("data-latest"), "models": models.split(",") if models else [],
            "caption": fig.find_element(By.TAG_NAME, "figcaption").text}


def test_header_and_live_figures_while_a_load_runs(page_server, browser, page_token_kept):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    uipage.console_errors(browser)  # the tests before asserted theirs: from here on, only this page's count
    uipage.resize(browser, uipage.DESKTOP)
    browser.get(page_server.url + "/ui/?token=" + PAGE_TOKEN)
    wait = WebDriverWait(browser, 20, poll_frequency=0.2)
    header = browser.find_element(By.ID, "board")
    wait.until(lambda d: header.find_element(By.CLASS_NAME, "health").text)
    assert "token" not in browser.current_url  # taken out of the address bar at once

    assert header.find_element(By.CLASS_NAME, "health").text == "HEALTHY"
    assert "healthy" in header.find_element(By.CLASS_NAME, "health").get_attribute("class").split()
    assert header.find_element(By.CLASS_NAME, "version").text == "edgeapp " + __version__
    assert header.find_element(By.CLASS_NAME, "engines").text.startswith("paddlelite ")
    assert header.find_element(By.CLASS_NAME, "uptime").text.startswith("up ")
    links = [a.get_attribute("href") for a in header.find_elements(By.CSS_SELECTOR, ".urls a")]
    assert page_server.url + "/" in links  # listening on 127.0.0.1: that is the address to use

    load = Load(page_server.url)
    load.start()
    # The service samples every 2 s and the page asks every 2 s: both models show up within seconds.
    wait.until(lambda d: set(plot(d, "rate")["models"]) >= {"2", "4"}
               and set(plot(d, "latency")["models"]) >= {"2", "4"})
    wait.until(lambda d: float(plot(d, "rate")["latest"] or 0) > 0)
    rate, latency = plot(browser, "rate"), plot(browser, "latency")
    assert rate["caption"].endswith(" req/s")
    assert latency["caption"].endswith(" ms") and ": p50 " in latency["caption"]
    legend = browser.find_element(By.CSS_SELECTOR, "#live figure[data-plot=rate] .legend").text
    assert "text-direction" in legend and "face" in legend  # models named as /api/status names them
    load.join(LOAD_SECONDS + 15)
    assert not load.is_alive() and load.statuses and set(load.statuses) == {200}

    figures = {key: plot(browser, key) for key in PLOTS}
    assert float(figures["memory"]["latest"]) > 0
    assert figures["memory"]["caption"].endswith(" MB")
    assert figures["restarts"]["latest"] == "0"  # a calm load restarts nothing
    # ... and refuses nothing. No 503 case here: this board puts a burst in line (or answers 504 past a
    # deadline) rather than refuse it, so a 503 would take a flood of seconds of detector runs.
    assert figures["refused"]["latest"] == "0"
    assert figures["queue"]["caption"].startswith("Queue") and " of " in figures["queue"]["caption"]

    uipage.screenshot(browser, "ui-live-desktop")
    uipage.resize(browser, uipage.PHONE)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= uipage.PHONE[0]
    uipage.screenshot(browser, "ui-live-phone")
    # A phone's screen has 2 or 3 pixels to a CSS pixel: the canvases get as many, or they are blurred.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": uipage.PHONE[0], "height": uipage.PHONE[1],
                                                                    "deviceScaleFactor": 2, "mobile": True})
    wait.until(lambda d: d.execute_script("return [...document.querySelectorAll('#live canvas')].every((c) =>"
                                          " c.width === Math.round(2 * c.getBoundingClientRect().width))"))
    uipage.resize(browser, uipage.DESKTOP)
    toggle = browser.find_element(By.CSS_SELECTOR, "#live figure[data-plot=latency] .legend button")
    toggle.click()  # a legend entry hides its model's lines (the scale then fits the others) ...
    assert toggle.get_attribute("aria-pressed") == "false"
    toggle.click()  # ... and shows them again
    assert toggle.get_attribute("aria-pressed") == "true"
    assert uipage.console_errors(browser) == []


HISTORY_POLLS = ("return performance.getEntriesByType('resource')"
                 ".filter((e) => e.name.includes('/api/status/history')).length")


def set_visibility(browser, state):
    """As when the tab is put in the background (or back): document.visibilityState and its event."""
    browser.execute_script("Object.defineProperty(document, 'visibilityState', {value: arguments[0],"
                           " configurable: true}); document.dispatchEvent(new Event('visibilitychange'))", state)


def test_a_hidden_tab_asks_the_board_nothing(page_server, browser, page_token_kept):
    from selenium.webdriver.support.ui import WebDriverWait

    uipage.console_errors(browser)
    browser.get(page_server.url + "/ui/?token=" + PAGE_TOKEN)
    WebDriverWait(browser, 10, poll_frequency=0.1).until(lambda d: d.execute_script(HISTORY_POLLS) >= 2)
    set_visibility(browser, "hidden")
    polls = browser.execute_script(HISTORY_POLLS)
    time.sleep(3.0)  # a poll every 2 s would have asked again by now
    polls_hidden = browser.execute_script(HISTORY_POLLS)
    assert polls_hidden <= polls + 1  # at most the one under way when it was hidden
    set_visibility(browser, "visible")
    # Back in sight: it asks again (at once; the wait is for a busy machine), catching up from the ring.
    WebDriverWait(browser, 10, poll_frequency=0.05).until(lambda d: d.execute_script(HISTORY_POLLS) > polls_hidden)
    assert uipage.console_errors(browser) == []


def test_without_the_token_the_live_part_waits_for_it(page_server, browser, page_token_kept):
    """The board refuses (401) a page without its token: the header and plots stay calm and say
    what they wait for, ask nothing more, and start at once when a token is given (api.setToken,
    as the token bar does)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    uipage.console_errors(browser)
    browser.get(page_server.url + "/api/health")  # the origin's storage, without the page running
    browser.execute_script("sessionStorage.removeItem('edgeapp.token')")
    browser.get(page_server.url + "/ui/")
    wait = WebDriverWait(browser, 10, poll_frequency=0.1)
    note = browser.find_element(By.CSS_SELECTOR, "#live .live-note")
    wait.until(lambda d: note.is_displayed())
    assert note.text == "The live figures need the board's access token."
    assert browser.find_element(By.CSS_SELECTOR, "#board .health").text == ""  # no verdict it has not seen
    assert browser.execute_script(HISTORY_POLLS) == 0  # the status said 401: the plots did not ask

    browser.execute_script("import('/ui/api.js').then((api) => api.setToken(arguments[0]))", PAGE_TOKEN)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#board .health").text == "HEALTHY")
    wait.until(lambda d: d.execute_script(HISTORY_POLLS) > 0)
    assert not note.is_displayed()
    errors = uipage.console_errors(browser)  # Chromium logs each refused load: only those
    assert errors and all("status of 401" in e for e in errors), errors
