"""Image classification: one top-1 result whose location covers the whole image.

Used by mid 2 (text-line direction, labels "0"/"180") and by the OCR pipeline on each text line.
"""
import cv2
import numpy as np

from edgeapp import preprocess
from edgeapp.results import result


class Classifier:
    def __init__(self, bundle, bundles=None):
        self.bundle = bundle
        pre = bundle.pre
        self.resize = pre.get("resize", "stretch")
        self.normalize = preprocess.Normalize(pre)
        self.labels = bundle.labels

    def preprocess(self, image):
        h, w = self.bundle.max_hw
        if self.resize == "text_line":
            img = preprocess.text_line(image, h, w)
        elif self.resize == "letterbox":
            img = preprocess.letterbox(image, h, w)[0]
        else:
            img = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
        return self.normalize.tensor(img, (h, w))

    def postprocess(self, scores):
        """Returns (index, label, score) of the top class."""
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        i = int(np.argmax(scores))
        label = self.labels[i] if i < len(self.labels) else str(i)
        return i, label, float(scores[i])

    def classify(self, image, accel):
        return self.postprocess(accel.run(self.bundle.id, [self.preprocess(image)])[0])

    def infer(self, image, accel):
        i, label, score = self.classify(image, accel)
        h, w = image.shape[:2]
        return [result(label, i, score, 0.0, 0.0, w, h)]
