"""The board's own page (src/edgeapp/ui/) in headless Chromium against the real service, all but
its live part (tests/test_ui_live.py): the token bar, "Try it" (results drawn over the picture,
the OCR text, the Server-Timing bar), faces and models. Every test checks the console (CSP
violations and uncaught exceptions show there) and the phone size (nothing wider than 390 px).

Token state between tests: every test here leaves page_server's origin with conftest.PAGE_TOKEN in
the tab's sessionStorage ("edgeapp.token"), so a next test may start with browser.get(...) and be
let in; the two tests on boards of their own (other origins, their own storage) come before the
last, which ends on page_server's page.
The board's expected refusals (401 before the token, the 400s of a bad archive or a faceless
picture) are logged by Chromium as failed loads: each test takes them out of the console log where
it causes them and checks they are exactly those.
"""
import base64

import pytest
import requests

from conftest import PAGE_TOKEN
from textimages import FONT, encode, page
from uipage import DESKTOP, PHONE, console_errors, resize, screenshot

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
WAIT = 30  # seconds: a first OCR run on a busy 2-core machine


@pytest.fixture(autouse=True)
def own_console(browser):
    """Each test answers for its own console: what an earlier test left there (in this file or
    another sharing the browser) is read off first."""
    console_errors(browser)


def by_css(driver, css):
    return driver.find_elements("css selector", css)


def wait_for(driver, condition, timeout=WAIT):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def wait_css(driver, css, timeout=WAIT):
    return wait_for(driver, lambda d: (by_css(d, css) or [None])[0], timeout)


def open_page(browser, url):
    """The page with the token given once in the address (api.js moves it to sessionStorage)."""
    resize(browser, DESKTOP)
    browser.get(url + "/ui/?token=" + PAGE_TOKEN)
    wait_css(browser, "#models-table tbody tr[data-mid]")
    assert "token" not in browser.current_url


def board(page_server, method, path, token=PAGE_TOKEN, **kw):
    """The API's own answer, beside the page's: what the page shows must be what the board said."""
    headers = dict(kw.pop("headers", {}), Authorization="Bearer " + token)
    return requests.request(method, page_server.url + path, headers=headers, timeout=60, **kw)


def failed_loads(browser, status):
    """The console's entries, all of them failed loads with this HTTP status (checked); how many."""
    errors = console_errors(browser)
    assert errors and all("status of %d" % status in e for e in errors), errors
    return len(errors)


def fits_a_phone(browser, name):
    resize(browser, PHONE)
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], "%s: the page is %d px wide on a %d px phone" % (name, width, PHONE[0])
    screenshot(browser, name)
    resize(browser, DESKTOP)


def saved_token(browser):
    return browser.execute_script("return sessionStorage.getItem('edgeapp.token')")


# ---- the token ---------------------------------------------------------------------------------

def test_token_bar_asks_refuses_a_wrong_one_and_keeps_the_right_one_out_of_the_address(page_server, browser):
    resize(browser, DESKTOP)
    browser.get(page_server.url + "/ui/")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    bar = wait_for(browser, lambda d: d.find_element("id", "token-bar") if d.find_element("id", "token-bar").is_displayed() else None)
    said = board(page_server, "GET", "/api/models", token="").json()["msg"]
    assert "This board needs its access token" in bar.text and said in bar.text
    fits_a_phone(browser, "ui-token-phone")

    give_token(browser, "not-the-token")
    wait_for(browser, lambda d: bar.is_displayed() and "not accepted" in bar.text)
    why = browser.find_element("css selector", "#models-table tbody td.why").text  # why the table is empty
    assert why == "The models are listed here once the board has its access token (above)."

    give_token(browser, PAGE_TOKEN)
    wait_css(browser, "#models-table tbody tr[data-mid]")
    assert not bar.is_displayed()
    assert saved_token(browser) == PAGE_TOKEN and PAGE_TOKEN not in browser.current_url
    failed_loads(browser, 401)

    browser.find_element("id", "token-forget").click()  # forgotten: asked for again
    wait_for(browser, lambda d: bar.is_displayed() and "needs its access token" in bar.text)
    assert saved_token(browser) is None

    open_page(browser, page_server.url)  # given once as ?token=: kept, and gone from the address
    assert saved_token(browser) == PAGE_TOKEN and browser.current_url.endswith("/ui/")
    failed_loads(browser, 401)  # those of the forgotten token, before this page
    browser.refresh()
    wait_css(browser, "#models-table tbody tr[data-mid]")
    assert console_errors(browser) == []


def give_token(browser, value):
    field = browser.find_element("id", "token-input")
    field.clear()
    field.send_keys(value)
    browser.find_element("id", "token-use").click()


# ---- try it ----------------------------------------------------------------------------------

def choose_models(browser, mids):
    for box in by_css(browser, "#try-models input[name=mid]"):
        if box.is_selected() != (int(box.get_attribute("value")) in mids):
            box.click()


def drop_file(browser, path, kind):
    """The file dropped on the drop zone, as a file manager's drag and drop gives it."""
    browser.execute_script(
        "const bytes = Uint8Array.from(atob(arguments[0]), (c) => c.charCodeAt(0));"
        "const dt = new DataTransfer(); dt.items.add(new File([bytes], arguments[1], {type: arguments[2]}));"
        "document.getElementById('try-drop').dispatchEvent("
        "new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
        base64.b64encode(path.read_bytes()).decode("ascii"), path.name, kind)


def run_image(browser, path, mids, dropped=False):
    """Runs the picture at path (picked, or dropped) on these models; the output blocks by model."""
    choose_models(browser, mids)
    if dropped:
        drop_file(browser, path, "image/png")
    else:
        browser.find_element("id", "try-file").send_keys(str(path))
    wait_for(browser, lambda d: d.find_element("id", "try-run").is_enabled())
    browser.execute_script("document.getElementById('try-results').textContent = ''")
    browser.find_element("id", "try-run").click()
    wait_for(browser, lambda d: len(by_css(d, "#try-results .output")) == len(mids))
    return {int(o.get_attribute("data-mid")): o for o in by_css(browser, "#try-results .output")}


def table_rows(output):
    return [[td.text for td in row.find_elements("tag name", "td")] for row in output.find_elements("css selector", "tr.result-row")]


def drawn_box_edge(browser, box, width):
    """The canvas's RGB on the middle of the box's left edge (box in the pixels of a picture
    width wide; the canvas may show it scaled)."""
    return browser.execute_script(
        "const c = document.getElementById('try-canvas'), s = c.width / arguments[2];"
        "return Array.from(c.getContext('2d').getImageData(Math.round(arguments[0] * s),"
        "Math.round(arguments[1] * s), 1, 1).data).slice(0, 3);",
        box["left"], box["top"] + box["height"] / 2, width)


def first_colour(rgb):
    r, g, b = rgb  # the first model's colour, #e6194b
    return r > 180 and g < 90 and b < 120


def test_try_a_face_drawn_over_the_picture_and_an_error_said(page_server, browser, photos, tmp_path):
    import cv2
    open_page(browser, page_server.url)
    face_png = tmp_path / "astronaut.png"
    face_png.write_bytes(encode(photos["astronaut"]))
    known = board(page_server, "POST", "/api/model/service/binary?mid=4", data=face_png.read_bytes()).json()["data"]["result"]

    outputs = run_image(browser, face_png, [4], dropped=True)
    assert browser.find_element("id", "try-chosen").text.startswith("astronaut.png")
    assert by_css(browser, "#try-canvas")[0].is_displayed()
    assert browser.execute_script("return document.getElementById('try-canvas').width") == 512
    [row] = table_rows(outputs[4])
    box = known[0]["location"]
    assert row[0] == "face" and abs(float(row[1]) - known[0]["score"]) < 1e-3
    assert [int(v) for v in row[2:]] == [round(box[k]) for k in ("left", "top", "width", "height")]
    assert 170 < box["left"] < 195 and 70 < box["top"] < 95  # the astronaut's face, found by hand
    assert first_colour(drawn_box_edge(browser, box, 512))  # drawn over the picture
    timing = browser.find_element("id", "try-timing").text
    assert "inference" in timing and "queue" in timing and "ms" in timing
    assert by_css(browser, "#try-timing .seg-inference")

    big = tmp_path / "astronaut-2048.jpg"  # a phone-sized photo: sent whole, shown scaled to 1600 px
    big.write_bytes(encode(cv2.resize(photos["astronaut"], (2048, 2048), interpolation=cv2.INTER_CUBIC), ".jpg"))
    [row] = table_rows(run_image(browser, big, [4])[4])
    assert browser.execute_script("return document.getElementById('try-canvas').width") == 1600
    left, top, width, height = (int(v) for v in row[2:])
    assert abs(left - 4 * box["left"]) < 16 and abs(width - 4 * box["width"]) < 24, row
    assert first_colour(drawn_box_edge(browser, {"left": left, "top": top, "height": height}, 2048))

    notes = tmp_path / "notes.jpg"  # not an image: the board's 400 (code 1002), said in the page
    notes.write_bytes(b"these are notes, not a picture")
    said = board(page_server, "POST", "/api/model/service/binary?mid=4", data=notes.read_bytes()).json()
    choose_models(browser, [4])
    browser.find_element("id", "try-file").send_keys(str(notes))
    browser.find_element("id", "try-run").click()
    error = wait_for(browser, lambda d: d.find_element("id", "try-error") if d.find_element("id", "try-error").is_displayed() else None)
    assert error.text == "Error %d: %s" % (said["code"], said["msg"]) and not by_css(browser, "#try-results .output")
    wait_for(browser, lambda d: not d.find_element("id", "try-picture").is_displayed())
    failed_loads(browser, 400)
    assert console_errors(browser) == []


def test_try_a_text_page_listed_and_copied_and_two_models_at_once(page_server, browser, photos, tmp_path):
    import cv2
    open_page(browser, page_server.url)
    text_jpg = tmp_path / "page.jpg"
    text_jpg.write_bytes(encode(page([("HELLO WORLD", (60, 120)), ("EdgeBoard 2026", (60, 300))])[0], ".jpg"))
    outputs = run_image(browser, text_jpg, [3])
    area = outputs[3].find_element("css selector", "textarea.ocr-text")
    assert area.get_attribute("value") == "HELLO WORLD\nEdgeBoard 2026"
    assert [row[0] for row in table_rows(outputs[3])] == ["HELLO WORLD", "EdgeBoard 2026"]
    # plain http on a LAN has no navigator.clipboard: the Copy button falls back to select + copy
    browser.execute_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    outputs[3].find_element("css selector", "button.copy").click()
    wait_for(browser, lambda d: outputs[3].find_element("css selector", ".copy-note").text == "copied")

    both = photos["astronaut"].copy()  # a face and a line of text in one picture: models 3 and 4
    both[410:500] = 255
    cv2.putText(both, "HELLO WORLD", (20, 470), FONT, 1.4, (0, 0, 0), 3, cv2.LINE_AA)
    both_png = tmp_path / "both.png"
    both_png.write_bytes(encode(both))
    outputs = run_image(browser, both_png, [3, 4])
    assert outputs[3].find_element("css selector", "textarea.ocr-text").get_attribute("value").split() == ["HELLO", "WORLD"]
    assert [row[0] for row in table_rows(outputs[4])] == ["face"]
    screenshot(browser, "ui-try-desktop")
    camera = browser.find_element("id", "try-camera")  # on a phone: its camera, the back one
    assert camera.get_attribute("capture") == "environment" and camera.get_attribute("accept") == "image/*"
    fits_a_phone(browser, "ui-try-phone")
    assert console_errors(browser) == []


# ---- faces ---------------------------------------------------------------------------------

def test_register_list_and_delete_a_face(page_server, browser, photos, tmp_path):
    open_page(browser, page_server.url)
    wait_for(browser, lambda d: d.find_element("id", "faces").is_displayed())
    face_png = tmp_path / "astronaut.png"
    face_png.write_bytes(encode(photos["astronaut"]))
    text_png = tmp_path / "no-face.png"
    text_png.write_bytes(encode(page([("NO FACE HERE", (60, 120))])[0]))

    register(browser, "eileen", text_png)  # no face: the board's 400 (code 1014), nothing added
    said = board(page_server, "POST", "/v1/vision/face/register", data={"userid": "eileen"},
                 files={"image": ("no-face.png", text_png.read_bytes())}).json()
    message = wait_for(browser, lambda d: "1014" in d.find_element("id", "faces-msg").text and d.find_element("id", "faces-msg"))
    assert message.text == "Error 1014: " + said["error"]
    failed_loads(browser, 400)

    mirrored = tmp_path / "astronaut-mirrored.png"  # two pictures at once: image and image1
    mirrored.write_bytes(encode(photos["astronaut"][:, ::-1]))
    register(browser, "eileen", face_png, mirrored)
    wait_css(browser, "#faces-list li[data-userid=eileen]")
    assert browser.find_element("id", "faces-msg").text == "eileen: face added (2 faces)"
    assert browser.find_element("id", "faces-summary").text.startswith("1 of at most 100 people registered, 2 faces")
    assert board(page_server, "POST", "/v1/vision/face/list").json()["faces"] == ["eileen"]
    fits_a_phone(browser, "ui-faces-phone")

    delete = browser.find_element("css selector", "#faces-list button[data-userid=eileen]")
    delete.click()
    browser.find_element("css selector", "#faces-list [data-confirm=no]").click()  # "Keep": nothing sent
    assert by_css(browser, "#faces-list li[data-userid=eileen]") and not by_css(browser, "[data-confirm]")
    browser.find_element("css selector", "#faces-list button[data-userid=eileen]").click()
    browser.find_element("css selector", "#faces-list [data-confirm=yes]").click()
    wait_for(browser, lambda d: not by_css(d, "#faces-list li[data-userid=eileen]"))
    assert browser.find_element("id", "faces-msg").text == "eileen: face deleted"
    assert board(page_server, "POST", "/v1/vision/face/list").json()["faces"] == []
    assert console_errors(browser) == []


def register(browser, userid, *paths):
    field = browser.find_element("id", "faces-userid")
    field.clear()
    field.send_keys(userid)
    pictures = browser.find_element("id", "faces-image")
    browser.execute_script("arguments[0].value = ''", pictures)  # a multiple input adds to what it holds
    pictures.send_keys("\n".join(str(p) for p in paths))
    browser.find_element("id", "faces-add").click()


# ---- models --------------------------------------------------------------------------------

def test_a_board_without_a_token_or_a_face_model(start_server, fast_model_dir, browser, tmp_path):
    """No token configured: no token bar, and a push is refused with 1019, which the page says
    plainly; no face model: no Faces part. (Another origin: page_server's token is untouched.)"""
    plain = start_server(model_dir=fast_model_dir, face_db=str(tmp_path / "faces.db"))
    resize(browser, DESKTOP)
    browser.get(plain.url + "/ui/")
    wait_css(browser, "#models-table tbody tr[data-mid='2']")
    assert not browser.find_element("id", "token-bar").is_displayed()
    assert not browser.find_element("id", "faces").is_displayed()
    assert not browser.find_element("id", "token-forget").is_displayed()
    bad = tmp_path / "bundle.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really a gzip archive")
    browser.find_element("id", "models-archive").send_keys(str(bad))
    browser.find_element("id", "models-install").click()
    message = wait_for(browser, lambda d: "1019" in d.find_element("id", "models-msg").text and d.find_element("id", "models-msg"))
    said = requests.post(plain.url + "/api/models", data=bad.read_bytes(), timeout=30).json()
    assert said["code"] == 1019
    assert message.text.startswith("This board has no access token configured")
    assert message.text.endswith("Error 1019: " + said["msg"])
    failed_loads(browser, 403)
    assert console_errors(browser) == []


def test_delete_a_model_and_install_it_again(start_server, browser, tmp_path):
    """On a board of its own (copies of two bundles, a token): Delete with its confirm step, then
    the same bundle's archive installed; the table and Try it's choices follow each change."""
    from pushing import model_dir_of, pack
    from support import MODEL_DIR
    own = start_server(model_dir=model_dir_of(tmp_path / "models", "text-direction", "face"), token=PAGE_TOKEN,
                       face_db=str(tmp_path / "faces.db"))
    archive = pack(MODEL_DIR + "/face", tmp_path / "face.tar.gz")
    sha = board(own, "GET", "/api/models").json()["data"]
    open_page(browser, own.url)

    def mids(css):  # read in one script: the lists are rebuilt while the test polls them
        return sorted(browser.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]), (n) => Number(n.dataset.mid || n.value))", css))
    assert mids("#models-table tbody tr[data-mid]") == [2, 4] and mids("#try-models input") == [2, 4]

    browser.find_element("css selector", "#models-table button[data-mid='4']").click()
    browser.find_element("css selector", "#models-table [data-confirm=yes]").click()
    wait_for(browser, lambda d: mids("#models-table tbody tr[data-mid]") == [2] and mids("#try-models input") == [2])
    assert browser.find_element("id", "models-msg").text == "Model 4 (face) removed"

    browser.find_element("id", "models-archive").send_keys(str(archive))
    browser.find_element("id", "models-install").click()
    wait_for(browser, lambda d: mids("#models-table tbody tr[data-mid]") == [2, 4] and mids("#try-models input") == [2, 4])
    face_sha = [m["sha256"] for m in sha if m["id"] == 4][0]
    assert browser.find_element("id", "models-msg").text == "Model 4 (face) added, sha256 " + face_sha[:12]
    assert console_errors(browser) == []


def test_models_table_and_a_refused_upload(page_server, browser, tmp_path):
    open_page(browser, page_server.url)
    models = board(page_server, "GET", "/api/models").json()["data"]
    rows = {int(r.get_attribute("data-mid")): r for r in by_css(browser, "#models-table tbody tr[data-mid]")}
    assert sorted(rows) == sorted(m["id"] for m in models)
    for m in models:
        sha = rows[m["id"]].find_element("css selector", "td.col-sha256 code")
        assert sha.text == m["sha256"][:12] and sha.get_attribute("title") == m["sha256"]
        accuracy = rows[m["id"]].find_element("css selector", "td.col-accuracy").text
        assert accuracy == (m.get("accuracy") or "–")
        assert rows[m["id"]].find_element("css selector", "td.col-name").text == m["name"]

    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really a gzip archive")
    said = board(page_server, "POST", "/api/models", data=bad.read_bytes(), headers={"Content-Type": "application/gzip"})
    assert said.status_code == 400
    browser.find_element("id", "models-archive").send_keys(str(bad))
    browser.find_element("id", "models-install").click()
    message = wait_for(browser, lambda d: "Error" in d.find_element("id", "models-msg").text and d.find_element("id", "models-msg"))
    assert message.text == "Error %d: %s" % (said.json()["code"], said.json()["msg"])
    failed_loads(browser, 400)

    rows[8].find_element("css selector", "button[data-mid='8']").click()  # the confirm step, then "Keep"
    assert "Delete model 8 (objects)" in browser.find_element("css selector", "#models-table .confirm").text
    browser.find_element("css selector", "#models-table [data-confirm=no]").click()
    assert not by_css(browser, "#models-table .confirm")
    screenshot(browser, "ui-models-desktop")
    fits_a_phone(browser, "ui-models-phone")
    assert len(board(page_server, "GET", "/api/models").json()["data"]) == len(models)
    assert console_errors(browser) == []
