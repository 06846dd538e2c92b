"""Driving the board's page in headless Chromium: the browser, its console, screenshots, sizes."""
import shutil

from support import REPO

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SHOTS = REPO / "build" / "artifacts"   # the screenshots a test run keeps (README shows one)
DESKTOP, PHONE = (1280, 1400), (390, 844)  # CSS pixels: a laptop, and a phone held upright


def start_browser():
    if not (CHROMIUM and DRIVER):
        raise RuntimeError("chromium and chromedriver are needed: `make test` installs them (Debian's chromium, "
                           "chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=%d,%d" % DESKTOP):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    return driver


def console_errors(driver):
    """The console's errors since the last call (CSP violations and uncaught exceptions included)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def resize(driver, size):
    """The viewport (not the window) at size, in CSS pixels."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": size[0], "height": size[1], "deviceScaleFactor": 1,
                            "mobile": size[0] < 600})


def screenshot(driver, name):
    """The whole page (not only the viewport) as build/artifacts/<name>.png; its path. Leaves the
    viewport at the page's full height: resize() before going on."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / (name + ".png")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.execute_script("return document.documentElement.clientWidth")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    path.write_bytes(driver.get_screenshot_as_png())
    return path
