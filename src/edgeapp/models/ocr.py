"""The OCR pipeline (mid 3): DB detection → text direction → CTC recognition.

Each stage is another model type; this module only crops the detected regions and chains them.
The detector and the direction classifier are the bundles named in PostProcess (ids 1 and 2);
PostProcess.page_orientation names a page orientation classifier (mid 5) that turns the page upright
first; it is optional: without that model installed or loaded, the page is read as it was sent.
Points are always in the pixels of the image sent, and `extended.direction` is how far the line is
turned clockwise in it (the page's turn plus the line's own 0 or 180).
"""
import cv2
import numpy as np

from edgeapp.models import line_direction, page_turn
from edgeapp.models.base import ModelType, needed_bundle
from edgeapp.models.classify import Classifier
from edgeapp.models.ctc_rec import Recognizer
from edgeapp.models.db_det import TextDetector
from edgeapp.errors import UnknownModel
from edgeapp.results import box_result


class OcrPipeline(ModelType):
    """No fit of its own (so no reduction: its crops need every pixel of the image)."""

    def __init__(self, bundle, bundles):
        super().__init__(bundle)
        post = bundle.post
        self.detector = TextDetector(needed_bundle(bundles, post.get("detector"), "detector", bundle))
        direction = post.get("direction")
        self.direction = Classifier(needed_bundle(bundles, direction, "direction", bundle)) if direction else None
        self.direction_thresh = float(post.get("direction_thresh", 0.9))
        self.direction_votes = max(1, int(post.get("direction_votes", 3)))
        self.drop_score = float(post.get("drop_score", 0.5))
        self.recognizer = Recognizer(bundle)
        # Not a need (see needs()): a board may leave the page orientation model out.
        orientation = bundles.get(int(post["page_orientation"])) if post.get("page_orientation") else None
        self.page_orientation = Classifier(orientation) if orientation else None
        self.page_orientation_thresh = float(post.get("page_orientation_thresh", 0.85))

    def needs(self):
        """Ids of the bundles whose predictors this pipeline runs."""
        ids = [self.detector.bundle.id, self.bundle.id]
        if self.direction:
            ids.append(self.direction.bundle.id)
        return ids

    def page_angle(self, image, accel):
        """How far the page is turned clockwise ("0", "90", "180" or "270"), if the page
        orientation model is there and sure enough; else "0"."""
        if self.page_orientation is None:
            return "0"
        try:
            _, label, score = self.page_orientation.classify(image, accel)
        except UnknownModel:  # installed but not loaded (e.g. dropped by the memory budget)
            return "0"
        return label if score >= self.page_orientation_thresh else "0"

    def infer(self, image, accel):
        turn = self.page_angle(image, accel)
        image, to_original = page_turn.upright(image, turn)
        out = []
        for pts, _ in self.detector.detect(image, accel):
            text, score, angle = self.read_line(crop_region(image, pts), accel)
            if not text.strip() or score < self.drop_score:
                continue
            pts = to_original(pts)
            points = [[round(float(x), 2), round(float(y), 2)] for x, y in pts]
            # The line's turn in the image sent: the page's and its own.
            direction = str((int(turn) + angle) % 360)
            out.append(box_result(text, 0, score, pts, {"points": points, "direction": direction}))
        return out

    def read_line(self, crop, accel):
        """(text, score, 0 or 180: how far the crop was turned to read it)."""
        if self.direction is not None:
            label, score = line_direction.direction(self.direction, crop, accel, self.direction_votes)
            if label == "180" and score >= self.direction_thresh:
                return self.recognizer.recognize(cv2.rotate(crop, cv2.ROTATE_180), accel) + (180,)
        return self.recognizer.recognize(crop, accel) + (0,)


def crop_region(image, pts):
    """Perspective-crop a 4-point region (tl, tr, br, bl) to an upright rectangle."""
    pts = np.asarray(pts, dtype=np.float32)
    w = int(round(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3]))))
    h = int(round(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2]))))
    w, h = max(w, 1), max(h, 1)
    dst = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(pts, dst)
    crop = cv2.warpPerspective(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    if h >= 1.5 * w:  # a vertical line: read it turned on its side, as PaddleOCR does
        crop = np.rot90(crop)
    return np.ascontiguousarray(crop)
