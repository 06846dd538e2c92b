"""BlazeFace face detection (MediaPipe short- and full-range): boxes and 6 keypoints per face.

The network gives, per SSD anchor, 16 regression values (box centre, size, then 6 keypoints as x, y
offsets, all in input pixels relative to the anchor centre) and one score logit. The anchors are the
MediaPipe ones: per stride, a grid of cell centres with `per_cell` anchors each (fixed size 1).

Bundle keys: PostProcess.anchors = {"strides": [8, 16], "per_cell": [2, 6]} (short range;
full range: [4], [1]), score_thresh (default 0.5), nms_thresh (0.3), max_faces (100).
Preprocess.resize: letterbox (default), stretch or resize_short; MediaPipe normalises RGB to [-1, 1].
Result: label "face", location in original pixels, extended.keypoints = {name: [x, y]}.
"""
import cv2
import numpy as np

from edgeapp.models import fit, tensor
from edgeapp.models.base import ModelType
from edgeapp.results import result

KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


def anchors(input_h, input_w, strides, per_cell, offset=0.5):
    """(N, 2) anchor centres, normalised to the input (MediaPipe SsdAnchorsCalculator, fixed size)."""
    out = []
    for stride, n in zip(strides, per_cell):
        gh, gw = int(np.ceil(input_h / float(stride))), int(np.ceil(input_w / float(stride)))
        ys, xs = np.meshgrid((np.arange(gh) + offset) / gh, (np.arange(gw) + offset) / gw, indexing="ij")
        centres = np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1)
        out.append(np.repeat(centres, int(n), axis=0))
    return np.concatenate(out, axis=0).astype(np.float32)


class FaceDetector(ModelType):
    def __init__(self, bundle, bundles=None):
        super().__init__(bundle)
        post = bundle.post
        self.fit = fit.Fit(bundle, "letterbox", ("stretch", "resize_short"))
        self.normalize = tensor.Normalize(bundle.pre)
        h, w = bundle.max_hw
        spec = post.get("anchors", {"strides": [8, 16], "per_cell": [2, 6]})
        strides, per_cell = spec.get("strides"), spec.get("per_cell")
        if not strides or not per_cell or len(strides) != len(per_cell):
            raise ValueError("PostProcess.anchors needs strides and per_cell of the same length")
        self.anchors = anchors(h, w, strides, per_cell, float(spec.get("offset", 0.5)))
        self.score_thresh = float(post.get("score_thresh", 0.5))
        self.nms_thresh = float(post.get("nms_thresh", 0.3))
        self.max_faces = int(post.get("max_faces", 100))
        self.face_label = (bundle.labels or ["face"])[0]

    def preprocess(self, image):
        img, place = self.fit(image)
        return self.normalize.tensor(img, self.bundle.max_hw), place

    def postprocess(self, outputs, place, image_shape):
        """outputs: regressors (1, N, 16) and score logits (1, N, 1) -> [(box x1 y1 x2 y2, score, kps)]."""
        reg, logits = _by_width(outputs)
        n = self.anchors.shape[0]
        reg = reg.reshape(-1, reg.shape[-1])
        logits = logits.reshape(-1)
        if reg.shape[0] != n or logits.shape[0] != n:
            raise ValueError("model gives %d boxes, the anchors are %d" % (reg.shape[0], n))
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = np.nonzero(scores >= self.score_thresh)[0]
        if keep.size == 0:
            return []
        h, w = self.bundle.max_hw
        reg, scores, anc = reg[keep], scores[keep], self.anchors[keep] * (w, h)
        cx, cy = anc[:, 0] + reg[:, 0], anc[:, 1] + reg[:, 1]
        bw, bh = reg[:, 2], reg[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1)
        picked = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), self.score_thresh, self.nms_thresh,
                                  top_k=self.max_faces)
        ih, iw = image_shape[:2]
        faces = []
        for i in np.asarray(picked, dtype=np.int64).reshape(-1):
            x0, y0 = place.to_original(boxes[i, 0], boxes[i, 1])
            x1, y1 = place.to_original(boxes[i, 0] + boxes[i, 2], boxes[i, 1] + boxes[i, 3])
            x0, x1 = float(np.clip(x0, 0, iw)), float(np.clip(x1, 0, iw))
            y0, y1 = float(np.clip(y0, 0, ih)), float(np.clip(y1, 0, ih))
            if x1 - x0 < 1 or y1 - y0 < 1:
                continue
            kps = {}
            for k, name in enumerate(KEYPOINTS[:(reg.shape[1] - 4) // 2]):
                kx, ky = place.to_original(anc[i, 0] + reg[i, 4 + 2 * k], anc[i, 1] + reg[i, 5 + 2 * k])
                kps[name] = [round(float(kx), 2), round(float(ky), 2)]
            faces.append(((x0, y0, x1, y1), float(scores[i]), kps))
        faces.sort(key=lambda f: -f[1])
        return faces

    def detect(self, image, accel):
        x, place = self.preprocess(image)
        return self.postprocess(accel.run(self.bundle.id, [x]), place, image.shape)

    def infer(self, image, accel):
        return [result(self.face_label, 0, score, x0, y0, x1 - x0, y1 - y0, {"keypoints": kps})
                for (x0, y0, x1, y1), score, kps in self.detect(image, accel)]


def _by_width(outputs):
    """(regressors, logits) whatever order the converter left the outputs in."""
    if len(outputs) != 2:
        raise ValueError("a BlazeFace model has 2 outputs, this one %d" % len(outputs))
    a, b = (np.asarray(o, dtype=np.float32) for o in outputs)
    return (a, b) if a.shape[-1] >= b.shape[-1] else (b, a)
