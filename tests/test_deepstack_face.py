"""DeepStack's face routes (edgeapp.deepstack_face) over HTTP, driven by deepstack-python's
DeepstackFace as Home Assistant drives them and by hand for the rest, against the real Api and a
real face database, with the stand-in face model of tests/face_standin.py (a coloured square is a
face, its colour the person): the routes' own logic (limits, thresholds, errors, several faces,
a model change, the token) with vectors a test controls. The real models behind the same routes:
tests/test_deepstack.py."""
import sqlite3
import sys
from pathlib import Path

import pytest
import requests
from deepstack.core import DeepstackException, DeepstackFace

import face_standin
from face_standin import picture
from support import Server

RED, BLUE, GREEN = (0, 0, 200), (200, 0, 0), (0, 200, 0)
LIMITS = {"face_max_users": 3, "face_max_per_user": 3}


class StandInServer(Server):
    """tests/face_standin.py served like `edgeapp serve` (tools/launch.py: port, environment, log)."""
    name = "face-standin"
    model_key = "standin@1"

    def command(self, model_dir):
        return [sys.executable, str(Path(face_standin.__file__)), "--host", self.host, "--port", str(self.port),
                "--model-key", self.model_key]


def start(log_dir, model_key="standin@1", **settings):
    cls = type("Server", (StandInServer,), {"model_key": model_key})
    return cls(log_dir, **dict(LIMITS, **settings)).wait_ready(30)


@pytest.fixture
def server(tmp_path):
    s = start(tmp_path)
    yield s
    s.stop()


def post(server, route, files=None, **data):
    r = requests.post(server.url + "/v1/vision/face/" + route, files=files, data=data, timeout=30)
    return r.status_code, r.json()


def client(server, **kw):
    return DeepstackFace(ip=server.host, port=server.port, timeout=30, **kw)


def test_register_list_recognise_delete_with_the_ha_client(server):
    face = client(server)
    assert face.register("alice", picture([RED], size=64)) == "face added"
    assert face.register("bob", picture([BLUE], size=64)) == "face added"
    assert face.get_registered_faces() == ["alice", "bob"]
    # Another photo of alice (another size: cosine about 0.92) next to a stranger (about 0);
    # deepstack-python sends min_confidence 0.45, which does not lower the model's threshold (0.6).
    found = face.recognize(picture([RED, GREEN], size=80))
    assert [p["userid"] for p in found] == ["alice", "unknown"]
    assert 0.88 < found[0]["confidence"] < 0.96 and found[1]["confidence"] == 0
    assert [(p["x_min"], p["y_min"], p["x_max"], p["y_max"]) for p in found] == [(10, 40, 90, 120),
                                                                               (100, 40, 180, 120)]
    status, body = post(server, "delete", userid="alice")
    assert (status, body["success"], body["message"]) == (200, True, "face deleted")
    assert face.get_registered_faces() == ["bob"]
    assert [p["userid"] for p in face.recognize(picture([RED]))] == ["unknown"]
    assert face.recognize(picture([])) == []  # no face: no prediction
    assert post(server, "delete", userid="alice")[1]["message"] == "no person 'alice' was registered"


def test_several_pictures_min_confidence_and_match(server):
    status, body = post(server, "register", files={"image1": picture([RED], size=50),
                                                    "image2": picture([RED], size=70)}, userid="carol")
    assert (status, body["message"], body["faces"], type(body["duration"])) == (200, "face added", 2, int)
    assert post(server, "register", files={"image": picture([RED], size=60)}, userid="carol")[1]["message"] \
        == "face updated"
    status, body = post(server, "recognize", files={"image": picture([RED], size=66)}, min_confidence="0.999")
    assert status == 200 and body["predictions"][0]["userid"] == "unknown"  # a client may raise the bar
    status, body = post(server, "recognize", files={"image": picture([GREEN])}, min_confidence="0.0")
    assert body["predictions"][0]["userid"] == "unknown"  # ... but not lower it
    status, body = post(server, "match", files={"image1": picture([RED], size=50), "image2": picture([RED], size=90)})
    assert status == 200 and 0.88 < body["similarity"] < 0.96
    status, body = post(server, "match", files={"image1": picture([RED]), "image2": picture([BLUE])})
    assert status == 200 and 0 <= body["similarity"] < 0.1  # cosine about 0, never under 0


def test_a_picture_with_several_faces_registers_the_largest(server):
    assert post(server, "register", files={"image": picture([BLUE, RED], size=[40, 90])}, userid="dan")[0] == 200
    found = client(server).recognize(picture([RED, BLUE], size=[60, 60]))
    assert [p["userid"] for p in found] == ["dan", "unknown"]


def test_list_and_delete_are_never_shed_for_a_busy_accelerator():
    from edgeapp.admission import shedder

    class Full:
        def refuses_now(self, waiting=0):
            return True

        def status(self):
            return {"queue_capacity": 4, "queue_depth": 4, "service_ms": 100.0}

        def retry_after(self, waiting=0):
            return 1

    shed = shedder(Full())
    assert shed(b"POST", b"/v1/vision/face/list", 0) is None
    assert shed(b"POST", b"/v1/vision/face/delete", 0) is None
    assert shed(b"POST", b"/v1/vision/face/register", 0).status == 503
    assert shed(b"POST", b"/v1/vision/face/recognize", 0).status == 503


def test_the_threshold_setting_overrides_the_models(tmp_path):
    s = start(tmp_path, face_threshold="0.95")
    try:
        face = client(s)
        face.register("alice", picture([RED], size=64))
        assert [p["userid"] for p in face.recognize(picture([RED], size=80))] == ["unknown"]  # 0.92 < 0.95
        assert [p["userid"] for p in face.recognize(picture([RED], size=64))] == ["alice"]  # the same photo
    finally:
        s.stop()


def test_errors_are_clear_and_change_nothing(server):
    cases = [
        (("register", {"image": picture([RED])}, {}), 400, 1001, "userid is missing"),
        (("register", {"image": picture([RED])}, {"userid": "unknown"}), 400, 1001, "unrecognised face"),
        (("register", None, {"userid": "dave"}), 400, 1001, "pictures"),
        (("register", {"image1": picture([RED]), "image2": picture([])}, {"userid": "dave"}), 400, 1014,
         "no face found in image2"),
        (("register", {"image": b"not a picture"}, {"userid": "dave"}), 400, 1002, ""),
        (("register", {"image%d" % i: picture([RED], size=40 + i) for i in range(4)}, {"userid": "dave"}), 409,
         1013, "at most 3 are allowed per person"),
        (("match", {"image1": picture([RED])}, {}), 400, 1001, "two pictures"),
        (("match", {"image1": picture([RED]), "image2": picture([])}, {}), 400, 1014, "image2"),
        (("recognize", None, {}), 400, 1001, "image"),
        (("recognize", {"image": picture([RED])}, {"min_confidence": "2"}), 400, 1001, "min_confidence"),
        (("delete", None, {}), 400, 1001, "userid"),
    ]
    for (route, files, data), status, code, text in cases:
        got, body = post(server, route, files=files, **data)
        assert (got, body["success"], body["code"]) == (status, False, code), (route, body)
        assert text in body["error"]
    for name, colour in (("a", RED), ("b", BLUE), ("c", GREEN)):
        assert post(server, "register", files={"image": picture([colour])}, userid=name)[0] == 200
    status, body = post(server, "register", files={"image": picture([(50, 50, 50)])}, userid="d")
    assert (status, body["code"]) == (409, 1013) and "3 people are registered" in body["error"]
    assert post(server, "list")[1]["faces"] == ["a", "b", "c"]


def test_api_key_when_a_token_is_set(tmp_path):
    s = start(tmp_path, token="s3cret")
    try:
        assert post(s, "list")[0] == 401
        assert post(s, "list", api_key="wrong")[0] == 401
        face = client(s, api_key="s3cret")
        assert face.register("erin", picture([RED])) == "face added"
        assert face.get_registered_faces() == ["erin"]
        assert [p["userid"] for p in face.recognize(picture([RED], size=70))] == ["erin"]
        with pytest.raises(DeepstackException):
            client(s).recognize(picture([RED]))
    finally:
        s.stop()


def test_restart_and_model_change(tmp_path):
    db = str(tmp_path / "faces.db")
    s = start(tmp_path, face_db=db)
    client(s).register("alice", picture([RED]))
    s.stop()
    s = start(tmp_path, face_db=db)  # read back from the database at start
    assert client(s).get_registered_faces() == ["alice"]
    assert requests.get(s.url + "/api/status", timeout=10).json()["data"]["faces"]["users"] == 1
    s.stop()
    s = start(tmp_path, model_key="standin@2", face_db=db)
    assert client(s).get_registered_faces() == []
    assert [p["userid"] for p in client(s).recognize(picture([RED], size=70))] == ["unknown"]
    faces = requests.get(s.url + "/api/status", timeout=10).json()["data"]["faces"]
    assert (faces["model"], faces["users"]) == ("standin@2", 0)
    assert faces["other_models"]["users"] == ["alice"] and faces["other_models"]["faces"] == 1
    assert "register these people again: alice" in s.log()
    s.stop()
    with sqlite3.connect(db) as conn:  # kept on disk, for the old model
        assert conn.execute("SELECT userid, model_key, model, version FROM faces").fetchall() == [
            ("alice", "standin@1", "standin", "1")]
