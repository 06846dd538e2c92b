"""Face recognition's own steps on a real photo: eyes levelled, crop placed, vectors compared.

The photo is scikit-image's astronaut.png (Eileen Collins, NASA, public domain; see test_zoo.py),
turned by known angles with OpenCV. The face detector is mid 4 (BlazeFace) on Paddle Lite.
"""
import cv2
import numpy as np
import pytest

from edgeapp.models.face_rec import aligned_crop, eye_angle
from textimages import iou

ASTRONAUT_FACE = (180, 82, 274, 176)  # test_zoo's, checked by eye
FACE_CENTRE = (227, 129)  # of that box


def turned(image, degrees):
    """The photo turned counter-clockwise by `degrees` about the face."""
    m = cv2.getRotationMatrix2D(FACE_CENTRE, degrees, 1.0)
    return cv2.warpAffine(image, m, image.shape[1::-1], borderMode=cv2.BORDER_REFLECT)


def biggest_face(local_engine, image):
    found = local_engine.model(4).detect(image, local_engine.accel)
    assert found, "no face found"
    return max(found, key=lambda f: f[0][2] - f[0][0])


def test_eye_angle_reads_the_tilt_of_the_eye_line():
    assert eye_angle({"right_eye": [10, 10], "left_eye": [20, 10]}) == pytest.approx(0)
    assert eye_angle({"right_eye": [10, 10], "left_eye": [20, 20]}) == pytest.approx(45)
    assert eye_angle({"right_eye": [10, 10], "left_eye": [20, 0]}) == pytest.approx(-45)
    assert eye_angle({"nose": [1, 1]}) == 0.0


@pytest.mark.parametrize("degrees", [20, -20])
def test_a_turned_face_is_cropped_upright(local_engine, photos, degrees):
    """The detector's eye keypoints follow the turn (within 10 degrees), and the aligned crops of
    the turned and the upright photo look alike (pixel correlation), which plain box crops do not."""
    upright = photos["astronaut"]
    box0, _, kps0 = biggest_face(local_engine, upright)
    box, _, kps = biggest_face(local_engine, turned(upright, degrees))
    # turning the image counter-clockwise turns the face counter-clockwise: its eye line's
    # clockwise angle goes down by about `degrees`
    assert eye_angle(kps) == pytest.approx(eye_angle(kps0) - degrees, abs=10)
    crop0 = aligned_crop(upright, box0, kps0, 1.4, (224, 224))
    crop = aligned_crop(turned(upright, degrees), box, kps, 1.4, (224, 224))
    plain = aligned_crop(turned(upright, degrees), box, {}, 1.4, (224, 224))

    def likeness(a, b):
        return np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1]
    assert likeness(crop0, crop) > 0.8
    assert likeness(crop0, crop) > likeness(crop0, plain) + 0.1


def test_the_crop_is_centred_on_the_face_and_scaled(local_engine, photos):
    box, _, kps = biggest_face(local_engine, photos["astronaut"])
    side = box[2] - box[0]
    crop = aligned_crop(photos["astronaut"], box, {}, 2.0, (224, 224))
    # with no tilt and crop_scale 2, the box fills the middle half of the crop
    x1, y1 = int(box[0]), int(box[1])
    middle = cv2.resize(photos["astronaut"][y1:y1 + int(side), x1:x1 + int(side)], (112, 112))
    assert np.abs(crop[56:168, 56:168].astype(int) - middle.astype(int)).mean() < 12


FRAME_AT = (800, 100)  # where the photo's top-left corner goes in the camera frame


def in_a_camera_frame(image, scale):
    """The photo scaled by `scale` on a grey 1920x1080 frame, as a camera snapshot shows a person."""
    photo = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    x, y = FRAME_AT
    h, w = min(photo.shape[0], 1080 - y), min(photo.shape[1], 1920 - x)
    frame[y:y + h, x:x + w] = photo[:h, :w]
    return frame


def test_a_face_too_small_for_mid_4_is_found_by_the_far_detector(local_engine, photos):
    """A 150 px face in a 1920x1080 frame: BlazeFace short range (mid 4, 128x128) finds none (it
    needs about 230 px there, measured), full range (mid 7, 192x192) finds it; the recogniser asks
    mid 7 when mid 4 finds nothing, and the vector is the face's (like the portrait's)."""
    frame = in_a_camera_frame(photos["astronaut"], 1.6)
    recognizer = local_engine.model(9)
    assert recognizer.detector.detect(frame, local_engine.accel) == []
    faces = recognizer.faces(frame, local_engine.accel)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0].box
    fx, fy = FRAME_AT
    left, top, right, bottom = ASTRONAUT_FACE
    want = (fx + 1.6 * left, fy + 1.6 * top, fx + 1.6 * right, fy + 1.6 * bottom)
    assert iou((x1, y1, x2, y2), want) >= 0.6
    portrait = recognizer.faces(photos["astronaut"], local_engine.accel)[0]
    assert float(portrait.vector @ faces[0].vector) >= recognizer.threshold


def test_a_face_picture_is_always_decoded_full_size(local_engine):
    """Engine.faces gives boxes in the decoded image's pixels: they are the picture's only because
    decode() never reduces a face_rec model's picture (its crops need every pixel)."""
    assert local_engine.model(9).reduction(4000, 3000) == 1
