"""CTC text recognition (PP-OCR rec): a text-line image -> its text and a confidence."""

from edgeapp.models import fit, line_pieces, tensor
from edgeapp.models.base import ModelType
from edgeapp.results import result


class Recognizer(ModelType):
    def __init__(self, bundle, bundles=None):
        super().__init__(bundle)
        post = bundle.post
        # The line is scaled to the input's height (linearly, as PaddleOCR), aspect kept; a line
        # wider than the input is read in windows (line_pieces), never squeezed. Preprocess.resize
        # is not read: a recogniser only reads text lines.
        self.fit = fit.Fit(bundle, "text_line", default_interp="linear")
        self.normalize = tensor.Normalize(bundle.pre)
        self.chars = load_charset(bundle.file(post["character_dict"]), post.get("use_space_char", True))
        height = bundle.max_hw[0]
        self.max_width = height * int(post.get("max_line_aspect", line_pieces.MAX_LINE_ASPECT))
        # Context each side of a window's own part: two thirds of the height by default. Measured
        # on the benchmark's lines with word-gap errors: margins of 16/24/32/48/80 px gave 42/46/33/
        # 30/24 missed or invented spaces for 126/133/142/159/224 runs (the characters: no change).
        self.margin = int(post.get("window_margin", height * 2 // 3))
        if not 0 <= 2 * self.margin < bundle.max_hw[1] - line_pieces.STRIDE:
            raise ValueError("PostProcess.window_margin %d: must leave room in the %d-wide input"
                             % (self.margin, bundle.max_hw[1]))

    def scaled(self, image):
        """The line at the input's height, as wide as its aspect makes it (up to max_line_aspect)."""
        return fit.text_line(image, self.fit.out_h, self.max_width, self.fit.interp)[0]

    def preprocess(self, image):
        """([one input tensor per window], the windows) of a line of any length."""
        line = self.scaled(image)
        windows = line_pieces.plan(line_pieces.ink_profile(line), self.fit.out_w, self.margin)
        return [self.normalize.tensor(line[:, w.start:w.end], self.bundle.max_hw) for w in windows], windows

    def read_window(self, x, win, accel):
        """The characters of one window's tensor that are its own (line_pieces.keep_own)."""
        probs = accel.run(self.bundle.id, [x])[0][0]
        return line_pieces.keep_own(line_pieces.placed(line_pieces.decode(probs, self.chars), win), win)

    def recognize(self, image, accel):
        """(text, confidence) of one line of any length; one accelerator run per window."""
        tensors, windows = self.preprocess(image)
        pieces = [self.read_window(x, win, accel) for x, win in zip(tensors, windows)]
        return line_pieces.join(line_pieces.stitch(pieces, windows))

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
