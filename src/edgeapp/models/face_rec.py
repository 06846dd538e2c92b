"""Face recognition (mid 9): faces found by a face detector bundle, each turned upright by its eyes,
cropped square around it, embedded by this bundle's model, and named from the face gallery.

The detector is the bundle PostProcess.detector names (mid 4, BlazeFace short range: a box and eye
keypoints). When it finds no face, PostProcess.far_detector (mid 7, BlazeFace full range, which
finds faces half as big in a camera frame) is asked, if it is installed and loaded: optional, so
that a board without it still recognises the faces mid 4 finds.
The embedding model (FaceRes) was trained on loose, upright crops: `crop_scale` is the crop's side
against the detector's box (measured: BENCHMARKS.md, "Face verification"). Vectors are
L2-normalised, so the similarity of two faces is their dot product (cosine), 1 for the same crop.

A gallery (edgeapp.facedb.FaceGallery, given by the engine) names each face with the user whose
registered vector is most similar, when that similarity reaches the bar (bar(): the gallery's
threshold setting, else this bundle's `threshold`); else "unknown". `model_key` names the vectors'
space, "name@version": the package and model file, its version and the crop. The gallery never
compares vectors of different keys; building this model makes its key the gallery's model in use.
"""
import collections
import math

import cv2
import numpy as np

from edgeapp.errors import FaceDbUnavailable, UnknownModel
from edgeapp.facedb import UNKNOWN
from edgeapp.models import tensor
from edgeapp.models.base import ModelType, needed_bundle
from edgeapp.models.blazeface import FaceDetector
from edgeapp.results import result


Face = collections.namedtuple("Face", "box score vector")  # box: x1, y1, x2, y2 in image pixels


class FaceRecognizer(ModelType):
    uses_gallery = True

    def __init__(self, bundle, bundles, gallery=None):
        super().__init__(bundle)
        post = bundle.post
        self.detector = FaceDetector(needed_bundle(bundles, post.get("detector"), "detector", bundle))
        # Not a need (see needs()): a board may leave the far detector out.
        far = bundles.get(int(post["far_detector"])) if post.get("far_detector") else None
        self.far_detector = FaceDetector(far) if far else None
        self.crop_scale = float(post.get("crop_scale", 1.4))
        self.min_face_px = float(post.get("min_face_px", 20))
        self.dim = int(post.get("dim", 1024))
        self.threshold = float(post.get("threshold", 0.5))
        self.normalize = tensor.Normalize(bundle.pre)
        self.gallery = gallery
        self.model_key = model_key(bundle, self.crop_scale)
        if gallery is not None:
            try:  # its vectors in memory now, and a model change logged, before the first request
                gallery.use_model(self.model_key, self.dim)
            except FaceDbUnavailable:
                pass  # logged by the gallery; the face requests say it again

    def needs(self):
        return [self.detector.bundle.id, self.bundle.id]

    def faces(self, image, accel):
        """Every face the detectors find, big enough to recognise, biggest first, as Face records."""
        found = [f for f in self.detect(image, accel) if _side(f[0]) >= self.min_face_px]
        found.sort(key=lambda f: -_side(f[0]))
        return [Face(box, score, self.embed(image, box, kps, accel)) for box, score, kps in found]

    def detect(self, image, accel):
        """The detector's faces, or the far detector's when it finds none (and is there)."""
        found = self.detector.detect(image, accel)
        if found or self.far_detector is None:
            return found
        try:
            return self.far_detector.detect(image, accel)
        except UnknownModel:  # installed but not loaded (e.g. dropped by the memory budget)
            return found

    def embed(self, image, box, keypoints, accel):
        """The unit vector of one face: the upright crop through this bundle's model."""
        crop = aligned_crop(image, box, keypoints, self.crop_scale, self.bundle.max_hw)
        outputs = accel.run(self.bundle.id, [self.normalize.tensor(crop, self.bundle.max_hw)])
        vector = _embedding(outputs, self.dim)
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def bar(self):
        """The similarity from which a face is named: the gallery's setting, else the model's own."""
        if self.gallery is not None and self.gallery.threshold is not None:
            return self.gallery.threshold
        return self.threshold

    def identify(self, vectors, bar=None):
        """[(userid or "unknown", similarity)] of each vector: its nearest registered face in the
        gallery at this model's key, named from `bar` up (default: bar())."""
        if self.gallery is None or len(vectors) == 0:
            return [(UNKNOWN, 0.0) for _ in vectors]
        bar = self.bar() if bar is None else bar
        named = self.gallery.match(np.stack(vectors), self.model_key, threshold=bar)
        return [(UNKNOWN if user is None else user, sim) for user, sim in named]

    def infer(self, image, accel):
        """EdgeBoard results: label = the user id or "unknown", score = the similarity to the
        nearest registered face (0 when nobody is registered), extended.detection = the score of
        the detector that found the face."""
        faces = self.faces(image, accel)
        out = []
        for face, (user, sim) in zip(faces, self.identify([f.vector for f in faces])):
            x1, y1, x2, y2 = face.box
            out.append(result(user, 0, max(sim, 0.0), x1, y1, x2 - x1, y2 - y1,
                              {"detection": round(face.score, 4)}))
        return out


def model_key(bundle, crop_scale):
    """What makes two vectors comparable, as "name@version" (edgeapp.facedb.split_model_key): the
    weights (package and model file; the package's version) and the crop."""
    source = bundle.spec.get("source", {})
    built = bundle.spec.get("built", {})
    name = "%s/%s" % (source.get("package", bundle.name), source.get("model_file", ""))
    return "%s@%s+crop%.2f" % (name, built.get("version", "?"), crop_scale)


def aligned_crop(image, box, keypoints, crop_scale, out_hw):
    """The face turned so that its eyes are level, in a square crop_scale times the box's side,
    centred on the box, resized to out_hw. Pixels outside the image repeat its border."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = crop_scale * _side(box)
    angle = eye_angle(keypoints)
    out_h, out_w = out_hw
    m = cv2.getRotationMatrix2D((cx, cy), angle, out_w / side)
    m[0, 2] += out_w / 2.0 - cx
    m[1, 2] += out_h / 2.0 - cy
    return cv2.warpAffine(image, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def eye_angle(keypoints):
    """Degrees the face is turned clockwise in the image (0 without both eyes): the slope of the
    line from its right eye (on the image's left) to its left eye."""
    right, left = keypoints.get("right_eye"), keypoints.get("left_eye")
    if not right or not left:
        return 0.0
    return math.degrees(math.atan2(left[1] - right[1], left[0] - right[0]))


def _side(box):
    return max(box[2] - box[0], box[3] - box[1])


def _embedding(outputs, dim):
    """The output with `dim` values (FaceRes also gives age and gender), as float32."""
    for out in outputs:
        if np.size(out) == dim:
            return np.asarray(out, dtype=np.float32).reshape(dim).copy()
    raise ValueError("no output of %d values; the model gives %s" % (dim, [list(np.shape(o)) for o in outputs]))
