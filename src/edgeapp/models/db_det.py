"""DB text detection (PP-OCR det): probability map → rotated text boxes in original pixels.

One pass sees the whole page letterboxed into the input. When that shrinks the text below what DB
finds reliably (PostProcess settings below, measured in the tiling study of issue 22), the page is
detected again in overlapping tiles of the same input shape at a larger scale (models/tiles.py).
"""
import cv2
import numpy as np

from edgeapp.models import fit, tensor, tiles
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
        # Tiling (0 tiles: never). Measured on rendered and photographed pages (issue 22): below
        # ~8 px of ink at the detector's scale DB loses lines or breaks them up. A box is then
        # under small_box_px high (its height floors at ~12 px however small the ink), or, with
        # lines run together or blurred, the boxes' median score drops under sure_score; found
        # boxes at least small_box_px high and sure are trusted. Tiles aim at tile_text_px of ink.
        self.max_tiles = int(post.get("max_tiles", 6))
        self.tile_overlap = int(post.get("tile_overlap", 96))
        self.small_box_px = float(post.get("small_box_px", 12))
        self.sure_box_px = float(post.get("sure_box_px", 14))
        self.sure_score = float(post.get("sure_score", 0.97))
        self.text_px = float(post.get("tile_text_px", 14))
        self.blank_tile_below = float(post.get("blank_tile_below", 0.5))

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
        """[(4x2 points, score)] in image pixels, reading order: one pass, then tiles if needed."""
        x, place = self.preprocess(image)
        prob = accel.run(self.bundle.id, [x])[0]
        boxes = self.postprocess(prob[0, 0], place, image.shape)
        scale = self.tiling_scale(boxes, place.scale, image.shape)
        if scale is None:
            return boxes
        return sort_reading_order(self.detect_tiled(image, scale, boxes, accel))

    def tiling_scale(self, boxes, page_scale, shape):
        """The scale to detect the page again at, in tiles; None when the one pass can be trusted:
        the page already fits the input unshrunk, or its text is tall enough at page_scale."""
        if self.max_tiles <= 0 or page_scale >= 1.0:
            return None
        if boxes:
            low = float(np.percentile([box_height(pts) * page_scale for pts, _ in boxes], 25))
            if not self.unsure(low, float(np.median([score for _, score in boxes]))):
                return None
            want = page_scale * self.text_px / max(low - 5.0, low / 2.0)  # a box is ~5 px over its ink
        elif page_scale <= self.blank_tile_below:  # a big page where nothing at all was found
            want = 1.0
        else:
            return None
        h, w = shape[:2]
        tile_h, tile_w = self.bundle.max_hw
        scale = tiles.affordable_scale(w, h, min(want, 1.0), self.max_tiles, min(tile_h, tile_w), self.tile_overlap)
        return scale if scale >= 1.25 * page_scale else None

    def unsure(self, low_height, median_score):
        """Are the boxes of one pass those of text too small for it (their lower quartile height,
        their median score)?"""
        return low_height < self.small_box_px or (low_height < self.sure_box_px and median_score < self.sure_score)

    def detect_tiled(self, image, scale, page_boxes, accel):
        """The page at `scale` in tiles of the input shape; boxes merged, in image pixels. Lines
        too tall for a tile's overlap keep the whole-page pass's box."""
        page = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ph, pw = page.shape[:2]
        tile_h, tile_w = self.bundle.max_hw
        size = min(tile_h, tile_w)
        rows = tiles.origins(ph, size, self.tile_overlap)
        band = dict(zip(rows, tiles.cores(rows, size, ph)))  # each row keeps the lines centred in its band
        found = []
        for k, (x0, y0) in enumerate(tiles.grid(pw, ph, size, self.tile_overlap)):
            tile = page[y0:y0 + size, x0:x0 + size]
            prob = accel.run(self.bundle.id, [self.normalize.tensor(tile, self.bundle.max_hw)])[0]
            whole = fit.Placement(1, 1, width=tile.shape[1], height=tile.shape[0], scale=1.0)
            for pts, score in self.postprocess(prob[0, 0], whole, tile.shape):
                pts = pts + (x0, y0)
                if band[y0][0] <= pts[:, 1].mean() < band[y0][1]:
                    found.append((pts, score, k))
        merged = [(order_points(pts) / scale, score) for pts, score in tiles.merge_lines(found)]
        return merged + self.lost_in_tiles(page_boxes, merged, scale)

    def lost_in_tiles(self, page_boxes, tile_boxes, scale):
        """The whole-page boxes of lines taller than the tiles' overlap where the tiles found
        nothing: such a line is cut by a tile border in every tile that has it (those pieces are
        dropped). A tall page box over tile boxes is rather several small lines run together."""
        tall = [b for b in page_boxes if box_height(b[0]) * scale > 0.75 * self.tile_overlap]
        return [(pts, score) for pts, score in tall if not any(tiles.inside(t, pts) for t, _ in tile_boxes)]

    def infer(self, image, accel):
        return [box_result(self.text_label, 0, score, pts, {"points": _points_list(pts)})
                for pts, score in self.detect(image, accel)]


def box_height(pts):
    """The short side of a box (its text height for a horizontal line)."""
    return float(min(cv2.minAreaRect(np.asarray(pts, np.float32))[1]))


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
