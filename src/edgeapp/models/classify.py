"""Image classification: one top-1 result whose location covers the whole image.

Used by mid 2 (text-line direction, labels "0"/"180"), by the OCR pipeline on each text line, by
mid 5 (document orientation) and by PaddleClas models brought with tools/bundle.py.
Preprocess.resize: stretch, letterbox, text_line, or resize_short (PaddleClas: the short side to
Preprocess.resize_short, then the centre crop of the input size). PostProcess.topk (default 1):
that many results, best first, each with the whole image as its location.
"""
import cv2
import numpy as np

from edgeapp import preprocess
from edgeapp.models import fit
from edgeapp.results import result


class Classifier:
    def __init__(self, bundle, bundles=None):
        self.bundle = bundle
        pre = bundle.pre
        self.resize = pre.get("resize", "stretch")
        self.normalize = preprocess.Normalize(pre)
        self.labels = bundle.labels
        self.topk = max(1, int(bundle.post.get("topk", 1)))
        if self.resize not in ("stretch", "letterbox", "text_line", "resize_short"):
            raise ValueError("Preprocess.resize %r: use stretch, letterbox, text_line or resize_short" % self.resize)
        self.interp = fit.interpolation(pre)

    def preprocess(self, image):
        h, w = self.bundle.max_hw
        if self.resize == "text_line":
            img = preprocess.text_line(image, h, w)
        elif self.resize == "letterbox":
            img = (preprocess.letterbox(image, h, w) if self.interp is None else fit.letterbox(image, h, w, self.interp))[0]
        elif self.resize == "resize_short":
            img = fit.resize_short_crop(image, h, w, pre_short(self.bundle.pre, h, w), self.interp)[0]
        else:
            img = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR if self.interp is None else self.interp)
        return self.normalize.tensor(img, (h, w))

    def reduction(self, w, h):
        """How much smaller a JPEG may be decoded for this model (engine.Engine.decode)."""
        mh, mw = self.bundle.max_hw
        pre = {"resize": self.resize, "resize_short": pre_short(self.bundle.pre, mh, mw)}
        return fit.bundle_reduction(self.bundle, w, h, "stretch", pre)

    def postprocess(self, scores):
        """Returns (index, label, score) of the top class."""
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        i = int(np.argmax(scores))
        label = self.labels[i] if i < len(self.labels) else str(i)
        return i, label, float(scores[i])

    def classify(self, image, accel):
        return self.postprocess(accel.run(self.bundle.id, [self.preprocess(image)])[0])

    def ranked(self, scores):
        """The topk (index, label, score), best first."""
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        order = np.argsort(-scores, kind="stable")[:self.topk]
        return [(int(i), self.labels[i] if i < len(self.labels) else str(int(i)), float(scores[i])) for i in order]

    def infer(self, image, accel):
        h, w = image.shape[:2]
        if self.topk == 1:
            i, label, score = self.classify(image, accel)
            return [result(label, i, score, 0.0, 0.0, w, h)]
        scores = accel.run(self.bundle.id, [self.preprocess(image)])[0]
        return [result(label, i, score, 0.0, 0.0, w, h) for i, label, score in self.ranked(scores)]


def pre_short(pre, h, w):
    return int(pre.get("resize_short", max(h, w)))
