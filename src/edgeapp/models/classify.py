"""Image classification: one top-1 result whose location covers the whole image.

Used by mid 2 (text-line direction, labels "0"/"180"), by the OCR pipeline on each text line, by
mid 5 (document orientation) and by PaddleClas models brought with tools/bundle.py.
Preprocess.resize: stretch, letterbox, text_line, or resize_short (PaddleClas: the short side to
Preprocess.resize_short, then the centre crop of the input size). Preprocess.interpolation applies
to each; without it the resize is linear, as PaddleClas's and PaddleOCR's. PostProcess.topk
(default 1): that many results, best first, each with the whole image as its location.
"""
import numpy as np

from edgeapp.models import fit, tensor
from edgeapp.models.base import ModelType
from edgeapp.results import result


class Classifier(ModelType):
    def __init__(self, bundle, bundles=None):
        super().__init__(bundle)
        self.fit = fit.Fit(bundle, "stretch", ("letterbox", "text_line", "resize_short"), default_interp="linear")
        self.normalize = tensor.Normalize(bundle.pre)
        self.topk = max(1, int(bundle.post.get("topk", 1)))

    def preprocess(self, image):
        return self.normalize.tensor(self.fit(image)[0], self.bundle.max_hw)

    def postprocess(self, scores):
        """Returns (index, label, score) of the top class."""
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        i = int(np.argmax(scores))
        return i, self.label(i), float(scores[i])

    def classify(self, image, accel):
        return self.postprocess(accel.run(self.bundle.id, [self.preprocess(image)])[0])

    def ranked(self, scores):
        """The topk (index, label, score), best first."""
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        order = np.argsort(-scores, kind="stable")[:self.topk]
        return [(int(i), self.label(int(i)), float(scores[i])) for i in order]

    def infer(self, image, accel):
        h, w = image.shape[:2]
        if self.topk == 1:
            i, label, score = self.classify(image, accel)
            return [result(label, i, score, 0.0, 0.0, w, h)]
        scores = accel.run(self.bundle.id, [self.preprocess(image)])[0]
        return [result(label, i, score, 0.0, 0.0, w, h) for i, label, score in self.ranked(scores)]
