"""Object detection: PaddleDetection exports, EdgeBoard SSD models, PicoDet heads (the layout model).

PostProcess.decode says what the model's outputs are:
- "nms": NMS done inside the model: rows [class, score, x1, y1, x2, y2] ([N, 6] or [1, N, 6]),
  optionally followed by the box-count output (then only the first count rows are read). Rows with
  class < 0 are padding. PostProcess.row_layout "box_score_class" reads rows [x1, y1, x2, y2, score,
  class] instead (CenterNet's top-k output); the default is "class_score_box". PostProcess.extra_nms
  true runs OpenCV's per-class NMS over those rows too (CenterNet's top-k keeps near-duplicates).
- "boxes_scores": the tensors a multiclass NMS would take: boxes [1, M, 4] (x1, y1, x2, y2) and
  scores [1, C, M] (or [1, M, C]). tools/bundle.py cuts the NMS off PaddleDetection exports so
  that every output has a fixed size; PicoDet exported without NMS gives these too.
- "gfl": PicoDet/GFL heads without post-processing: L score maps [1, n_l, C] (after sigmoid), then
  L box-distribution maps [1, n_l, 4 * (reg_max + 1)], one per stride in PostProcess.strides.
- "yolo": Darknet YOLOv3 heads, raw: one map [1, A * (5 + C), h, w] per PostProcess.masks entry (the
  anchor indices of that map, into PostProcess.anchors, [w, h] pairs in input pixels); per anchor the
  channels are x, y, w, h, objectness, C class logits. Box centre (cell + sigmoid) * stride, size
  exp * anchor; score = sigmoid(objectness) * sigmoid(class), as Darknet's own decoding.
Coordinates are input-canvas pixels, or 0..1 of the input with PostProcess.normalized = true
(EdgeBoard SSD). NMS is OpenCV's (cv2.dnn.NMSBoxesBatched: per class), with nms_thresh, nms_top_k
(candidates before NMS) and keep_top_k (boxes after); score_thresh drops weak results (PaddleDetection's
draw_threshold, EdgeBoard's threshold); background_label (e.g. 0 for SSD) is never reported.
Preprocess.resize: stretch (PaddleDetection keep_ratio false) or letterbox (keep_ratio true).
Result: one per object, label from label_list, index = class id, location in original pixels.
"""
import cv2
import numpy as np

from edgeapp.models import fit, tensor
from edgeapp.models.base import ModelType
from edgeapp.results import result

DECODERS = ("nms", "boxes_scores", "gfl", "yolo")
# decode "nms": where class, score, x1, y1, x2, y2 sit in a model's rows, by PostProcess.row_layout
ROW_LAYOUTS = {"class_score_box": [0, 1, 2, 3, 4, 5], "box_score_class": [5, 4, 0, 1, 2, 3]}


class Detector(ModelType):
    def __init__(self, bundle, bundles=None):
        super().__init__(bundle)
        post = bundle.post
        self.fit = fit.Fit(bundle, "stretch", ("letterbox",))
        self.normalize = tensor.Normalize(bundle.pre, tensor.IMAGENET_MEAN, tensor.IMAGENET_STD)
        self.decode = post.get("decode", "nms")
        if self.decode not in DECODERS:
            raise ValueError("PostProcess.decode %r: use one of %s" % (self.decode, ", ".join(DECODERS)))
        self.score_thresh = float(post.get("score_thresh", 0.5))
        self.nms_thresh = float(post.get("nms_thresh", 0.5))
        self.nms_top_k = int(post.get("nms_top_k", 1000))
        self.keep_top_k = int(post.get("keep_top_k", 100))
        self.background = post.get("background_label", -1)
        self.background = -1 if self.background is None else int(self.background)
        self.normalized = bool(post.get("normalized", False))
        self.scores_layout = post.get("scores_layout", "CM")
        self.extra_nms = bool(post.get("extra_nms", False))
        self.row_order = ROW_LAYOUTS.get(post.get("row_layout", "class_score_box"))
        if self.row_order is None:
            raise ValueError("PostProcess.row_layout %r: use one of %s" % (post.get("row_layout"), ", ".join(ROW_LAYOUTS)))
        self.strides = [int(s) for s in post.get("strides", [8, 16, 32, 64])]
        self.anchors = np.asarray(post.get("anchors", []), dtype=np.float32).reshape(-1, 2)
        self.masks = [[int(i) for i in m] for m in post.get("masks", [])]

    # -- steps -----------------------------------------------------------------------------------
    def preprocess(self, image):
        img, place = self.fit(image)
        return self.normalize.tensor(img, self.bundle.max_hw), place

    def postprocess(self, outputs, place, image_shape):
        """Model outputs -> [(class, score, x1, y1, x2, y2)] in original pixels, best first."""
        if self.decode == "nms":
            rows = self._nms_rows(outputs)
            if self.extra_nms and rows.size:
                rows = self._rows_nms(rows)
        else:
            decoder = {"boxes_scores": self._boxes_scores, "gfl": self._gfl, "yolo": self._yolo}[self.decode]
            boxes, scores = decoder(outputs)
            rows = self._opencv_nms(boxes, scores)
        if rows.size == 0:
            return []
        h, w = self.bundle.max_hw
        if self.normalized:
            rows[:, [2, 4]] *= w
            rows[:, [3, 5]] *= h
        ih, iw = image_shape[:2]
        out = []
        for cls, score, x1, y1, x2, y2 in rows:
            if score < self.score_thresh or int(cls) < 0 or int(cls) == self.background:
                continue
            x1, y1 = place.to_original(x1, y1)
            x2, y2 = place.to_original(x2, y2)
            x1, x2 = float(np.clip(x1, 0, iw)), float(np.clip(x2, 0, iw))
            y1, y2 = float(np.clip(y1, 0, ih)), float(np.clip(y2, 0, ih))
            if x2 - x1 < 1 or y2 - y1 < 1:
                continue
            out.append((int(cls), float(score), x1, y1, x2, y2))
        out.sort(key=lambda r: -r[1])
        return out[:self.keep_top_k]

    def detect(self, image, accel):
        x, place = self.preprocess(image)
        return self.postprocess(accel.run(self.bundle.id, [x]), place, image.shape)

    def infer(self, image, accel):
        return [result(self.label(c), c, s, x1, y1, x2 - x1, y2 - y1) for c, s, x1, y1, x2, y2 in self.detect(image, accel)]

    # -- decoders --------------------------------------------------------------------------------
    def _nms_rows(self, outputs):
        rows = np.asarray(outputs[0], dtype=np.float32)
        rows = rows.reshape(-1, rows.shape[-1]) if rows.size else np.zeros((0, 6), np.float32)
        if rows.shape[1] != 6:
            raise ValueError("decode 'nms' expects rows of 6 values, the model gives %d" % rows.shape[1])
        if len(outputs) > 1 and np.asarray(outputs[1]).size >= 1:
            rows = rows[:max(0, int(np.asarray(outputs[1]).reshape(-1)[0]))]
        rows = rows[np.isfinite(rows).all(axis=1)]  # a NaN row (an empty top-k slot) is no object
        return rows[:, self.row_order]  # fancy indexing: a copy, in the order [class, score, box]

    def _rows_nms(self, rows):
        """[class, score, box] rows through _opencv_nms: each row's score in its class's column."""
        classes = rows[:, 0].astype(np.int64)
        keep = (classes >= 0) & (classes < max(len(self.bundle.labels), 1))
        rows, classes = rows[keep], classes[keep]
        scores = np.zeros((len(rows), max(len(self.bundle.labels), 1)), np.float32)
        scores[np.arange(len(rows)), classes] = rows[:, 1]
        return self._opencv_nms(rows[:, 2:6], scores)

    def _boxes_scores(self, outputs):
        if len(outputs) < 2:
            raise ValueError("decode 'boxes_scores' expects boxes and scores outputs, the model gives %d" % len(outputs))
        boxes = np.asarray(outputs[0], dtype=np.float32)
        scores = np.asarray(outputs[1], dtype=np.float32)
        boxes = boxes.reshape(-1, 4)
        m = boxes.shape[0]
        scores = scores.reshape(scores.shape[-2], scores.shape[-1])
        if self.scores_layout == "CM" and scores.shape[1] == m:
            scores = scores.T
        elif scores.shape[0] != m:
            raise ValueError("scores %s do not match %d boxes" % (list(scores.shape), m))
        return boxes, scores  # (M, 4), (M, C)

    def _gfl(self, outputs):
        n = len(outputs) // 2
        if n == 0 or len(outputs) != 2 * n or n != len(self.strides):
            raise ValueError("decode 'gfl' expects %d score maps and %d box maps, the model gives %d outputs"
                             % (len(self.strides), len(self.strides), len(outputs)))
        h, w = self.bundle.max_hw
        all_boxes, all_scores = [], []
        for stride, score, dist in zip(self.strides, outputs[:n], outputs[n:]):
            score = np.asarray(score, dtype=np.float32).reshape(-1, np.shape(score)[-1])
            dist = np.asarray(dist, dtype=np.float32)
            bins = dist.shape[-1] // 4
            gh, gw = int(np.ceil(h / float(stride))), int(np.ceil(w / float(stride)))
            if gh * gw != score.shape[0]:
                raise ValueError("stride %d: %d cells expected, the model gives %d" % (stride, gh * gw, score.shape[0]))
            top = np.argsort(-score.max(axis=1), kind="stable")[:self.nms_top_k]
            ys, xs = np.divmod(top, gw)
            cx, cy = (xs + 0.5) * stride, (ys + 0.5) * stride
            d = dist.reshape(-1, 4, bins)[top]
            d = np.exp(d - d.max(axis=2, keepdims=True))
            d = (d / d.sum(axis=2, keepdims=True) * np.arange(bins, dtype=np.float32)).sum(axis=2) * stride
            all_boxes.append(np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], axis=1))
            all_scores.append(score[top])
        return np.concatenate(all_boxes), np.concatenate(all_scores)

    def _yolo(self, outputs):
        if len(outputs) != len(self.masks) or not self.masks:
            raise ValueError("decode 'yolo' expects one map per PostProcess.masks entry (%d), the model gives %d"
                             % (len(self.masks), len(outputs)))
        h, w = self.bundle.max_hw
        all_boxes, all_scores = [], []
        for mask, out in zip(self.masks, outputs):
            out = np.asarray(out, dtype=np.float32)
            gh, gw = out.shape[-2:]
            maps = out.reshape(len(mask), -1, gh * gw)  # anchor, channel, cell
            ys, xs = np.divmod(np.arange(gh * gw), gw)
            cx = (xs + _sigmoid(maps[:, 0])) * (w / float(gw))
            cy = (ys + _sigmoid(maps[:, 1])) * (h / float(gh))
            anchor = self.anchors[mask]
            bw, bh = np.exp(maps[:, 2]) * anchor[:, :1], np.exp(maps[:, 3]) * anchor[:, 1:]
            all_boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=2).reshape(-1, 4))
            scores = _sigmoid(maps[:, 4:5]) * _sigmoid(maps[:, 5:])  # anchor, class, cell
            all_scores.append(scores.transpose(0, 2, 1).reshape(-1, scores.shape[1]))
        return np.concatenate(all_boxes), np.concatenate(all_scores)

    def _opencv_nms(self, boxes, scores):
        """Per-class NMS with OpenCV on (M, 4) x1y1x2y2 boxes and (M, C) scores -> rows."""
        # A box may be a candidate for more than one class (multiclass NMS does that): take every
        # (box, class) pair above the threshold, strongest first, at most nms_top_k of them.
        pair_box, pair_cls = np.nonzero(scores > self.score_thresh)
        if pair_box.size == 0:
            return np.zeros((0, 6), np.float32)
        pair_score = scores[pair_box, pair_cls]
        order = np.argsort(-pair_score, kind="stable")[:self.nms_top_k]
        pair_box, pair_cls, pair_score = pair_box[order], pair_cls[order], pair_score[order]
        b = boxes[pair_box]
        xywh = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
        keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), pair_score.tolist(), pair_cls.tolist(),
                                       self.score_thresh, self.nms_thresh)
        keep = np.asarray(keep, dtype=np.int64).reshape(-1)[:self.keep_top_k]
        return np.concatenate([pair_cls[keep, None].astype(np.float32), pair_score[keep, None], b[keep]], axis=1)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + exp(-x)), without exp's overflow warnings
