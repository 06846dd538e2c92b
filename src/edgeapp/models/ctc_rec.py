"""CTC text recognition (PP-OCR rec): a text-line image → its text and a confidence."""

from edgeapp.models import fit, tensor
from edgeapp.models.base import ModelType
from edgeapp.results import result


class Recognizer(ModelType):
    def __init__(self, bundle, bundles=None):
        super().__init__(bundle)
        post = bundle.post
        # One fixed tensor shape: the line is scaled to the height (linearly, as PaddleOCR), padded
        # on the right, and squeezed only if it is wider than the tensor (reads well up to about
        # twice as wide). Preprocess.resize is not read: a recogniser only reads text lines.
        self.fit = fit.Fit(bundle, "text_line", default_interp="linear")
        self.normalize = tensor.Normalize(bundle.pre)
        self.chars = load_charset(bundle.file(post["character_dict"]), post.get("use_space_char", True))

    def preprocess(self, image):
        return self.normalize.tensor(self.fit(image)[0], self.bundle.max_hw)

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
