"""Fitting an image into a bundle's fixed input, and mapping canvas pixels back: the one place the
model types resize.

Preprocess.resize names the way (stretch, letterbox, resize_short, text_line); every way gives an
image no larger than the bundle's H x W, which the type pads to exactly that shape (the only shape
the accelerator takes: README, Memory). One interpolation rule for all of them:
Preprocess.interpolation when the bundle names one; else the model type's own default (Fit's
`default_interp`); else automatic: area when the image is scaled down (by a factor below 1 for the
ways that keep the aspect, on both sides for the others), linear otherwise.
"""
import math

import cv2

INTERPOLATION = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
# PaddleDetection's Resize `interp` is an OpenCV flag number.
INTERP_BY_NUMBER = {0: "nearest", 1: "linear", 2: "cubic", 3: "area", 4: "lanczos"}


def interpolation(pre, default=None):
    """Preprocess.interpolation (a name, or OpenCV's number; when the bundle names none, `default`)
    -> an OpenCV flag, or None for automatic."""
    value = pre.get("interpolation")
    value = default if value is None else value
    if value is None:
        return None
    if isinstance(value, int) and value in INTERP_BY_NUMBER:
        value = INTERP_BY_NUMBER[value]
    try:
        return INTERPOLATION[str(value).lower()]
    except KeyError:
        raise ValueError("Preprocess.interpolation %r: use one of %s" % (value, ", ".join(sorted(INTERPOLATION))))


class Placement:
    """Where the image went in the canvas: canvas = original * (sx, sy) + (dx, dy).

    scale: for the ways that keep the aspect (letterbox, resize_short), the one factor the size was
    computed from; sx and sy are the rounded size's own factors and differ from it by under a pixel.
    """

    def __init__(self, sx, sy, dx=0.0, dy=0.0, width=None, height=None, scale=None):
        self.sx, self.sy, self.dx, self.dy = float(sx), float(sy), float(dx), float(dy)
        self.width, self.height = width, height  # the image's extent inside the canvas
        self.scale = scale

    def to_original(self, x, y):
        return (x - self.dx) / self.sx, (y - self.dy) / self.sy


def _resize(image, w, h, interp, shrinking):
    # Automatic: area averages the pixels a shrink drops (linear would alias), linear enlarges.
    if interp is None:
        interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (int(w), int(h)), interpolation=interp)


def stretch(image, out_h, out_w, interp=None):
    """Both sides to the input's: the aspect is not kept."""
    h, w = image.shape[:2]
    img = _resize(image, out_w, out_h, interp, out_w < w and out_h < h)
    return img, Placement(out_w / float(w), out_h / float(h), width=out_w, height=out_h)


def letterbox(image, out_h, out_w, interp=None):
    """Aspect kept, placed at the top-left; the caller's Normalize pads the rest (bottom/right)."""
    h, w = image.shape[:2]
    s = min(out_h / float(h), out_w / float(w))
    nw = max(1, min(out_w, int(round(w * s))))
    nh = max(1, min(out_h, int(round(h * s))))
    img = _resize(image, nw, nh, interp, s < 1)
    return img, Placement(nw / float(w), nh / float(h), width=nw, height=nh, scale=s)


def resize_short_crop(image, out_h, out_w, short, interp=None):
    """PaddleClas: scale the short side to `short`, then cut the centre out_h x out_w (pad if smaller)."""
    h, w = image.shape[:2]
    s = float(short) / min(h, w)
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    img = _resize(image, nw, nh, interp, s < 1)
    x0, y0 = max(0, (nw - out_w) // 2), max(0, (nh - out_h) // 2)
    img = img[y0:y0 + out_h, x0:x0 + out_w]
    return img, Placement(nw / float(w), nh / float(h), -x0, -y0, width=img.shape[1], height=img.shape[0], scale=s)


def text_line(image, out_h, max_w, interp=None):
    """A text line to height out_h, aspect kept, width capped at max_w (squeezed if wider)."""
    h, w = image.shape[:2]
    nw = max(1, min(max_w, int(math.ceil(out_h * w / float(max(h, 1))))))
    img = _resize(image, nw, out_h, interp, nw < w and out_h < h)
    return img, Placement(nw / float(w), out_h / float(h), width=nw, height=out_h)


def resized_size(mode, w, h, out_h, out_w, short=None):
    """(width, height) a w x h image is resized to by `mode`, before any padding or crop."""
    if mode == "stretch":
        return out_w, out_h
    if mode == "letterbox":
        s = min(out_h / float(h), out_w / float(w))
        return w * s, h * s
    if mode == "resize_short":
        s = float(short or max(out_h, out_w)) / min(h, w)
        return w * s, h * s
    if mode == "text_line":
        return min(out_w, out_h * w / float(max(h, 1))), out_h
    raise ValueError("unknown resize mode %r" % mode)


def reduction(w, h, need_w, need_h):
    """The largest JPEG decode scale-down (8, 4, 2, else 1) whose image still has need_w x need_h
    pixels: decoding at 1/8 of the size skips most of the work, and the model's own resize would
    have thrown those pixels away anyway."""
    for f in (8, 4, 2):
        if w // f >= need_w and h // f >= need_h:
            return f
    return 1


class Fit:
    """A bundle's Preprocess resize, read once when its model is built (a bad value fails the
    load, not a request): fit(image) -> (image no larger than the input, Placement).

    default: the way the type resizes when the bundle names none; others: the other ways the bundle
    may name (none: the type always resizes `default`'s way and Preprocess.resize is not read).
    default_interp: the type's interpolation (a name) when the bundle names none (None: automatic).
    """

    def __init__(self, bundle, default, others=(), default_interp=None):
        pre = bundle.pre
        allowed = (default,) + tuple(others)
        self.mode = pre.get("resize", default) if others else default
        if self.mode not in allowed:
            raise ValueError("Preprocess.resize %r: %s takes %s" % (self.mode, bundle.type, ", ".join(allowed)))
        self.out_h, self.out_w = bundle.max_hw
        self.interp = interpolation(pre, default_interp)
        self.short = int(pre.get("resize_short", max(self.out_h, self.out_w)))

    def __call__(self, image):
        h, w = self.out_h, self.out_w
        if self.mode == "stretch":
            return stretch(image, h, w, self.interp)
        if self.mode == "letterbox":
            return letterbox(image, h, w, self.interp)
        if self.mode == "resize_short":
            return resize_short_crop(image, h, w, self.short, self.interp)
        return text_line(image, h, w, self.interp)

    def reduction(self, w, h):
        """How much smaller a w x h JPEG may be decoded for this fit (engine.Engine.decode)."""
        nw, nh = resized_size(self.mode, w, h, self.out_h, self.out_w, self.short)
        return reduction(w, h, nw, nh)
