"""DB text detection (PP-OCR det): probability map → rotated text boxes in original pixels."""
import cv2
import numpy as np

from edgeapp.models import fit, tensor
from edgeapp.models.base import ModelType
from edgeapp.results import box_result


class TextDetector(ModelType):
    def __init__(self, bundle, bundles=None):
        super().__init__(bundle)
        post = bundle.post
        self.fit = fit.Fit(bundle, "letterbox")  # Preprocess.resize is not read: DB takes the whole page
        self.normalize = tensor.Normalize(bundle.pre, tensor.IMAGENET_MEAN, tensor.IMAGENET_STD)
        self.thresh = float(post.get("thresh", 0.3))
        self.box_thresh = float(post.get("box_thresh", 0.6))
        self.unclip_ratio = float(post.get("unclip_ratio", 1.5))
        self.min_size = float(post.get("min_size", 3))
        self.max_candidates = int(post.get("max_candidates", 1000))
        self.text_label = (bundle.labels or ["text"])[0]

    # -- the three steps -------------------------------------------------------------------
    def preprocess(self, image):
        resized, place = self.fit(image)
        return self.normalize.tensor(resized, self.bundle.max_hw), place

    def postprocess(self, prob, place, image_shape):
        """prob: HxW map of the canvas. Returns a list of (4x2 float points, score), original pixels
        (mapped back by the letterbox's one scale, place.scale)."""
        prob = prob[:place.height, :place.width]
        bitmap = (prob > self.thresh).astype(np.uint8)
        contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        ih, iw = image_shape[:2]
        boxes = []
        for contour in contours[:self.max_candidates]:
            rect = cv2.minAreaRect(contour)
            if min(rect[1]) < self.min_size:
                continue
            score = _mean_score(prob, contour)
            if score < self.box_thresh:
                continue
            rect = _unclip(rect, self.unclip_ratio)
            if min(rect[1]) < self.min_size + 2:
                continue
            pts = order_points(cv2.boxPoints(rect)) / place.scale
            pts[:, 0] = np.clip(pts[:, 0], 0, iw)
            pts[:, 1] = np.clip(pts[:, 1], 0, ih)
            boxes.append((pts, score))
        return sort_reading_order(boxes)

    def detect(self, image, accel):
        x, place = self.preprocess(image)
        prob = accel.run(self.bundle.id, [x])[0]
        return self.postprocess(prob[0, 0], place, image.shape)

    def infer(self, image, accel):
        return [box_result(self.text_label, 0, score, pts, {"points": _points_list(pts)})
                for pts, score in self.detect(image, accel)]


def _mean_score(prob, contour):
    """Mean probability inside the contour ("slow" mode: exact polygon, not its bounding box)."""
    x, y, w, h = cv2.boundingRect(contour)
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [contour.reshape(-1, 2) - (x, y)], 1)
    return float(cv2.mean(prob[y:y + h, x:x + w], mask)[0])


def _unclip(rect, ratio):
    # DB shrinks text regions while training; grow them back by area*ratio/perimeter on each side.
    # For a rectangle this is exactly what a polygon offset followed by minAreaRect gives.
    (cx, cy), (w, h), angle = rect
    d = w * h * ratio / max(2.0 * (w + h), 1e-6)
    return (cx, cy), (w + 2 * d, h + 2 * d), angle


def order_points(pts):
    """4 points → top-left, top-right, bottom-right, bottom-left (float32 4x2)."""
    pts = np.asarray(pts, dtype=np.float32)
    by_x = pts[np.argsort(pts[:, 0])]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def sort_reading_order(boxes):
    """Top to bottom, then left to right for boxes on the same line (within 10 px)."""
    boxes = sorted(boxes, key=lambda b: (b[0][0][1], b[0][0][0]))
    for i in range(len(boxes) - 1):
        for j in range(i, -1, -1):
            a, b = boxes[j], boxes[j + 1]
            if abs(b[0][0][1] - a[0][0][1]) < 10 and b[0][0][0] < a[0][0][0]:
                boxes[j], boxes[j + 1] = b, a
            else:
                break
    return boxes


def _points_list(pts):
    return [[round(float(x), 2), round(float(y), 2)] for x, y in pts]
