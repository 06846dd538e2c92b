"""The face set's photos through the face recognition model (mid 9, on Paddle Lite): two
photographs of one person are alike by the bundle's threshold, a different person is not.
The figures on the whole set are BENCHMARKS.md's "Face verification" (make bench-faces)."""
import numpy as np
import pytest

from tools import faceset

REGISTER, RECOGNISE, STRANGER = "obama", "obama3", "biden"


@pytest.fixture(scope="module")
def recognizer(local_engine):
    face_rec = [m for m in local_engine.models.values() if m.bundle.type == "face_rec"]
    assert face_rec, "mid 9 (face-recognition, type face_rec) is a default bundle: make models"
    return face_rec[0]


def only_face(recognizer, local_engine, photo, image_id):
    """The one face found in photo, checked against people.json's rough box."""
    faces = recognizer.faces(photo, local_engine.accel)
    labelled = [img for img in faceset.load()["images"] if img["id"] == image_id][0]["faces"]
    assert len(faces) == 1
    x1, y1, x2, y2 = labelled[0]["box"]
    cx, cy = (faces[0].box[0] + faces[0].box[2]) / 2, (faces[0].box[1] + faces[0].box[3]) / 2
    assert x1 < cx < x2 and y1 < cy < y2
    return faces[0]


def test_one_person_in_two_photographs_is_alike_and_another_person_is_not(recognizer, local_engine, face_photos):
    known = only_face(recognizer, local_engine, face_photos[REGISTER], REGISTER)
    again = only_face(recognizer, local_engine, face_photos[RECOGNISE], RECOGNISE)
    other = only_face(recognizer, local_engine, face_photos[STRANGER], STRANGER)
    assert np.linalg.norm(known.vector) == pytest.approx(1.0, abs=1e-5)
    same, different = float(known.vector.dot(again.vector)), float(known.vector.dot(other.vector))
    # measured 0.68-0.76 and 0.42-0.50 at crop scales 0.8-1.4 (BENCHMARKS.md)
    assert same >= recognizer.threshold + 0.05
    assert different < recognizer.threshold - 0.05
