"""DeepStack / CodeProject.AI compatibility, driven by the client library Home Assistant's DeepStack
integration uses (deepstack-python), and by hand for what that library does not cover."""
import pytest
import requests
from deepstack.core import DeepstackException, DeepstackFace, DeepstackObject

from textimages import encode, iou

ASTRONAUT_FACE = (180, 82, 274, 176)  # as in tests/test_zoo.py
ASTRONAUT_PERSON = (18, 12, 365, 512)  # drawn by hand: tools/objbench/labels.json
CHELSEA_CAT = (0, 0, 395, 300)  # the same
OBAMA3_FACE = (609, 305, 928, 625)  # mid 4's box in obama3.jpg, checked by eye (tools/faceset/people.json)


def _port(url):
    return int(url.rsplit(":", 1)[1])


def _box(p):
    return (p["x_min"], p["y_min"], p["x_max"], p["y_max"])


def test_object_detection_with_the_ha_client(server, photos):
    """/v1/vision/detection is mid 8 (objects, COCO): the astronaut is a person, the hand-drawn
    boxes of tools/objbench/labels.json; Chelsea is a cat first; the coffee photo has no person."""
    dsobject = DeepstackObject(ip="127.0.0.1", port=_port(server.url), timeout=30, min_confidence=0.4)
    predictions = dsobject.detect(encode(photos["astronaut"], ".jpg"))
    people = [p for p in predictions if p["label"] == "person"]
    assert len(people) == 1
    p = people[0]
    assert all(isinstance(p[k], int) for k in ("x_min", "y_min", "x_max", "y_max"))
    assert 0.4 <= p["confidence"] <= 1.0
    assert iou(_box(p), ASTRONAUT_PERSON) >= 0.8
    animals = dsobject.detect(encode(photos["chelsea"], ".jpg"))  # best first (NanoDet also says dog, weaker)
    assert animals[0]["label"] == "cat" and iou(_box(animals[0]), CHELSEA_CAT) >= 0.7
    assert "person" not in [p["label"] for p in dsobject.detect(encode(photos["coffee"], ".jpg"))]


def test_face_and_custom_models_with_the_ha_client(server, photos):
    port = _port(server.url)
    jpeg = encode(photos["astronaut"], ".jpg")
    assert [p["label"] for p in DeepstackFace(ip="127.0.0.1", port=port, timeout=30).detect(jpeg)] == ["face"]
    custom = DeepstackObject(ip="127.0.0.1", port=port, timeout=30, custom_model="face-far")
    assert [p["label"] for p in custom.detect(jpeg)] == ["face"]
    with pytest.raises(DeepstackException):
        DeepstackObject(ip="127.0.0.1", port=port, timeout=30, custom_model="no-such-model").detect(jpeg)


def test_answer_shapes_and_errors(server, photos):
    url = server.url + "/v1/vision/detection"
    r = requests.post(url, files={"image": encode(photos["astronaut"], ".jpg")}, data={"min_confidence": "0"},
                      timeout=30)
    body = r.json()
    assert r.status_code == 200 and body["success"] is True and isinstance(body["duration"], int)
    assert "Content-Length" in r.headers and "chunked" not in r.headers.get("Transfer-Encoding", "")
    assert len(body["predictions"]) < 20  # min_confidence 0 is clamped to a floor: no flood
    r = requests.post(url, files={"image": b"not an image at all"}, timeout=30)
    assert r.status_code == 400 and r.json()["success"] is False and r.json()["error"]
    r = requests.post(url, data={"min_confidence": "0.5"}, timeout=30)
    assert r.status_code == 400 and "image" in r.json()["error"]
    r = requests.post(url, files={"image": b"x"}, data={"min_confidence": "high"}, timeout=30)
    assert r.status_code == 400 and "min_confidence" in r.json()["error"]
    r = requests.post(server.url + "/v1/vision/custom/list", timeout=30)
    assert r.status_code == 200 and "face" in r.json()["models"]
    r = requests.get(server.url + "/v1/status/updateavailable", timeout=30)
    assert r.status_code == 200 and r.json()["success"] is True
    r = requests.get(server.url + "/", timeout=30)  # Blue Iris' alive check
    assert r.status_code == 200


def test_api_key_when_a_token_is_set(start_server, fast_model_dir, photos):
    s = start_server(model_dir=fast_model_dir, token="s3cret", deepstack_detection="text-direction")
    jpeg = encode(photos["coffee"], ".jpg")
    url = s.url + "/v1/vision/detection"
    r = requests.post(url, files={"image": jpeg}, timeout=30)
    assert r.status_code == 401 and r.json()["success"] is False
    assert requests.post(url, files={"image": jpeg}, data={"api_key": "wrong"}, timeout=30).status_code == 401
    dsobject = DeepstackObject(ip="127.0.0.1", port=_port(s.url), api_key="s3cret", timeout=30, min_confidence=0.1)
    assert [p["label"] for p in dsobject.detect(jpeg)] in (["0"], ["180"])


def test_face_recognition_with_the_ha_client(server, face_photos):
    """The real face models (mid 4 finds, mid 9 embeds) behind DeepStack's face routes, as Home
    Assistant drives them: Obama registered from one White House photograph is recognised in
    another; Biden is unknown; the EdgeBoard API names him too (mid 9); deleted, he is unknown."""
    face = DeepstackFace(ip="127.0.0.1", port=_port(server.url), timeout=60)
    jpeg = {name: encode(photo, ".jpg") for name, photo in face_photos.items()}
    assert face.register("obama", jpeg["obama"]) == "face added"
    try:
        assert "obama" in face.get_registered_faces()
        found = face.recognize(jpeg["obama3"])
        assert [p["userid"] for p in found] == ["obama"] and found[0]["confidence"] >= 0.59
        assert iou(_box(found[0]), OBAMA3_FACE) >= 0.7
        assert [p["userid"] for p in face.recognize(jpeg["biden"])] == ["unknown"]
        same = _match(server, jpeg["obama"], jpeg["obama3"])
        assert same >= 0.59 > _match(server, jpeg["obama"], jpeg["biden"])
        r = requests.post(server.url + "/api/model/service/binary?mid=9", data=jpeg["obama3"], timeout=60)
        assert [x["label"] for x in r.json()["data"]["result"]] == ["obama"]
    finally:
        r = requests.post(server.url + "/v1/vision/face/delete", data={"userid": "obama"}, timeout=30)
    assert r.json()["success"] is True and "obama" not in face.get_registered_faces()
    assert [p["userid"] for p in face.recognize(jpeg["obama3"])] == ["unknown"]


def _match(server, a, b):
    r = requests.post(server.url + "/v1/vision/face/match", files={"image1": a, "image2": b}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["similarity"]
