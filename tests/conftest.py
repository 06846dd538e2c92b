"""Shared fixtures: real edgeapp servers on loopback ports, and test images drawn with OpenCV."""
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from support import MODEL_DIR, REPO, Server, engine_settings, server_env
from textimages import encode


@pytest.fixture(scope="session")
def local_engine():
    """Every bundled model on Paddle Lite in this process (no worker): for model-level tests.
    Loaded, not warmed: a model warms up on its first run, so a test pays only for the models it
    uses (warming all of them at their maximum shapes took 8-22 s; memory is the worker's tests')."""
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles
    from edgeapp.engine import Engine

    bundles = load_bundles(MODEL_DIR)
    return Engine(bundles, LocalAccelerator(bundles, engine_settings(), warm=False))


@pytest.fixture(scope="session")
def start_server(tmp_path_factory):
    """Factory: start_server(model_dir=..., args=..., ready=True, **settings) -> Server; all stopped at the end."""
    log_dir = tmp_path_factory.mktemp("server-logs")
    servers = []

    def start(model_dir=MODEL_DIR, args=(), ready=True, **settings):
        s = Server(log_dir, model_dir, args, **settings)
        servers.append(s)
        return s.wait_ready() if ready else s

    yield start
    for s in servers:  # every one asked first: each takes a second or two to drain and stop
        s.ask_to_stop()
    for s in servers:
        s.stop()


@pytest.fixture(scope="session")
def run_python():
    """run_python(*argv, model_dir=..., **settings): a short python run as the server would see it."""

    def run(*argv, **kw):
        model_dir = kw.pop("model_dir", MODEL_DIR)
        return subprocess.run([sys.executable] + list(argv), env=server_env(model_dir, **kw), cwd=str(REPO),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                              timeout=120)

    return run


@pytest.fixture(scope="session")
def fast_model_dir(tmp_path_factory):
    """A model dir with only the fast text-direction bundle: servers that start in a second."""
    models = tmp_path_factory.mktemp("fast-models")
    shutil.copytree(os.path.join(MODEL_DIR, "text-direction"), str(models / "text-direction"))
    return models


@pytest.fixture(scope="session")
def server(start_server):
    """The real service with every bundled model, default settings."""
    return start_server()


@pytest.fixture(scope="session")
def url(server):
    return server.url


# ---- test images ----------------------------------------------------------------------------

def draw_text_page(width=640, height=360, text="HELLO 123"):
    """A white page with one line of black text (the OCR models find it; any model accepts it)."""
    img = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(img, text, (40, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (0, 0, 0), 4, cv2.LINE_AA)
    return img


@pytest.fixture(scope="session")
def text_image():
    return draw_text_page()


@pytest.fixture(scope="session")
def text_jpeg(text_image):
    return encode(text_image, ".jpg")


# ---- real photos -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """astronaut.png, chelsea.png and coffee.png out of the sha256-checked scikit-image wheel (downloaded
    once). skimage/data/astronaut.png: Eileen Collins, NASA, public domain; chelsea.png: CC0 (Stefan
    van der Walt); coffee.png: CC0 (Rachel Michetti)."""
    import zipfile
    from tools import build_models
    sources = build_models.load_sources(REPO / "models")
    wheel = build_models.fetch_wheel("scikit-image", sources["scikit-image"], REPO / "build" / "cache", print)
    out = tmp_path_factory.mktemp("photos")
    images = {}
    with zipfile.ZipFile(str(wheel)) as zf:
        for name in ("astronaut", "chelsea", "coffee"):
            data = zf.read("skimage/data/%s.png" % name)
            images[name] = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            (out / (name + ".png")).write_bytes(data)
    return images


@pytest.fixture(scope="session")
def face_photos():
    """Photos of tools/faceset/people.json for the face recognition tests, by image id, out of the
    sha256-checked face-recognition sdist (downloaded once into build/cache, or EDGEAPP_PACKAGE_CACHE):
    "obama" (obama.jpg, to register), "obama3" (another photograph of him, to recognise) and "biden"
    (a different person: unknown). Official White House photos, public domain; see people.json."""
    from tools import faceset
    return faceset.photos(["obama", "obama3", "biden"])


# ---- the board's page in headless Chromium ---------------------------------------------------

PAGE_TOKEN = "page-test-token"


@pytest.fixture(scope="session")
def page_server(start_server):
    """The real service with every bundled model and an access token (PAGE_TOKEN), with a face
    database of its own as every test server has: the page's tests (tests/test_ui*.py) share it."""
    return start_server(token=PAGE_TOKEN)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's chromium + chromium-driver, driven by Selenium), its console log
    kept (uipage.console_errors). One for the session: a start costs about a second."""
    import uipage
    driver = uipage.start_browser()
    yield driver
    driver.quit()
