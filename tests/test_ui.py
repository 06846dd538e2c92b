"""The try-it page end to end in headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): upload a generated image, wait for the rendered result, check the result table.
The screenshot is kept as build/artifacts/ui.png."""
import os
import shutil

import pytest

from support import REPO
from textimages import encode, page

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.fail("chromium and chromedriver are needed: `make test` installs them (Debian's chromium, "
                    "chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=1200,1400"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_upload_an_image_and_see_the_result(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    img, _ = page([("HELLO WORLD", (60, 120)), ("EdgeBoard 2026", (60, 300))])
    path = tmp_path / "page.jpg"
    path.write_bytes(encode(img, ".jpg"))
    browser.get(server.url + "/")  # a browser at the root is sent to the page
    wait = WebDriverWait(browser, 30)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[name=mid]")))
    for box in browser.find_elements(By.CSS_SELECTOR, "input[name=mid]"):
        if box.is_selected() != (box.get_attribute("value") == "3"):
            box.click()  # only model 3: the OCR pipeline
    browser.find_element(By.ID, "file").send_keys(str(path))
    browser.find_element(By.ID, "run").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "img.rendered")))
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.result-row")
    labels = [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows]
    assert labels == ["HELLO WORLD", "EdgeBoard 2026"]
    timing = browser.find_element(By.ID, "timing").text
    assert "inference" in timing and "queue" in timing
    wait.until(lambda d: "ppocr-det" in d.find_element(By.ID, "model-table").text)
    out = REPO / "build" / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(out / "ui.png"))
    assert os.path.getsize(str(out / "ui.png")) > 10000
