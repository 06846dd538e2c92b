"""CTC text recognition (PP-OCR rec): a text-line image → its text and a confidence."""

from edgeapp import preprocess
from edgeapp.models import fit
from edgeapp.results import result


class Recognizer:
    def __init__(self, bundle, bundles=None):
        self.bundle = bundle
        pre, post = bundle.pre, bundle.post
        self.normalize = preprocess.Normalize(pre)
        self.chars = load_charset(bundle.file(post["character_dict"]), post.get("use_space_char", True))

    def preprocess(self, image):
        # One fixed tensor shape: the line is scaled to the height, padded on the right, and
        # squeezed only if it is wider than the tensor (reads well up to about twice as wide).
        h, w = self.bundle.max_hw
        img = preprocess.text_line(image, h, w)
        return self.normalize.tensor(img, (h, w))

    def reduction(self, w, h):
        """How much smaller a JPEG may be decoded for this model (engine.Engine.decode)."""
        return fit.bundle_reduction(self.bundle, w, h, "text_line", {})

    def postprocess(self, probs):
        """probs: T x C softmax. Greedy CTC: best class per step, merge repeats, drop blanks (0)."""
        best = probs.argmax(axis=1)
        conf = probs.max(axis=1)
        keep = best != 0
        keep[1:] &= best[1:] != best[:-1]
        idx = best[keep]
        text = "".join(self.chars[i] if i < len(self.chars) else "" for i in idx)
        score = float(conf[keep].mean()) if keep.any() else 0.0
        return text, score

    def recognize(self, image, accel):
        return self.postprocess(accel.run(self.bundle.id, [self.preprocess(image)])[0][0])

    def infer(self, image, accel):
        text, score = self.recognize(image, accel)
        h, w = image.shape[:2]
        return [result(text, 0, score, 0.0, 0.0, w, h)] if text else []


def load_charset(path, use_space_char=True):
    """PaddleOCR dictionary: index 0 is the CTC blank, then one character per line, then a space."""
    with open(path, encoding="utf-8") as f:
        chars = [line.rstrip("\r\n") for line in f]
    if use_space_char:
        chars.append(" ")
    return ["<blank>"] + chars
