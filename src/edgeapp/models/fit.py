"""Fitting an image into a bundle's fixed input shape, and mapping canvas pixels back.

Shared by the model types that are not text-specific (detection, blazeface, classify's
PaddleClas-style resize_short + crop). Every result is exactly the bundle's H x W: the only shape
the accelerator takes (README, Memory).
"""
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
    """Preprocess.interpolation (a name, or OpenCV's number) -> an OpenCV flag, or None for automatic."""
    value = pre.get("interpolation", default)
    if value is None:
        return None
    if isinstance(value, int) and value in INTERP_BY_NUMBER:
        value = INTERP_BY_NUMBER[value]
    try:
        return INTERPOLATION[str(value).lower()]
    except KeyError:
        raise ValueError("Preprocess.interpolation %r: use one of %s" % (value, ", ".join(sorted(INTERPOLATION))))


class Placement:
    """Where the image went in the canvas: canvas = original * (sx, sy) + (dx, dy)."""

    def __init__(self, sx, sy, dx=0.0, dy=0.0, width=None, height=None):
        self.sx, self.sy, self.dx, self.dy = float(sx), float(sy), float(dx), float(dy)
        self.width, self.height = width, height  # the image's extent inside the canvas

    def to_original(self, x, y):
        return (x - self.dx) / self.sx, (y - self.dy) / self.sy


def _resize(image, w, h, interp):
    if interp is None:
        interp = cv2.INTER_AREA if w < image.shape[1] and h < image.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(image, (int(w), int(h)), interpolation=interp)


def stretch(image, out_h, out_w, interp=None):
    h, w = image.shape[:2]
    return _resize(image, out_w, out_h, interp), Placement(out_w / float(w), out_h / float(h), width=out_w, height=out_h)


def letterbox(image, out_h, out_w, interp=None):
    """Aspect kept, placed at the top-left; the caller's Normalize pads the rest (bottom/right)."""
    h, w = image.shape[:2]
    s = min(out_h / float(h), out_w / float(w))
    nw = max(1, min(out_w, int(round(w * s))))
    nh = max(1, min(out_h, int(round(h * s))))
    return _resize(image, nw, nh, interp), Placement(nw / float(w), nh / float(h), width=nw, height=nh)


def resize_short_crop(image, out_h, out_w, short, interp=None):
    """PaddleClas: scale the short side to `short`, then cut the centre out_h x out_w (pad if smaller)."""
    h, w = image.shape[:2]
    s = float(short) / min(h, w)
    nw, nh = max(1, int(round(w * s))), max(1, int(round(h * s)))
    img = _resize(image, nw, nh, interp)
    x0, y0 = max(0, (nw - out_w) // 2), max(0, (nh - out_h) // 2)
    img = img[y0:y0 + out_h, x0:x0 + out_w]
    return img, Placement(nw / float(w), nh / float(h), -x0, -y0, width=img.shape[1], height=img.shape[0])


def fit(image, pre, out_h, out_w, default="stretch", interp_default=None):
    """The bundle's Preprocess.resize applied: (image no larger than out_h x out_w, Placement)."""
    mode = pre.get("resize", default)
    interp = interpolation(pre, interp_default)
    if mode == "stretch":
        return stretch(image, out_h, out_w, interp)
    if mode == "letterbox":
        return letterbox(image, out_h, out_w, interp)
    if mode == "resize_short":
        return resize_short_crop(image, out_h, out_w, pre.get("resize_short", max(out_h, out_w)), interp)
    raise ValueError("Preprocess.resize %r: use stretch, letterbox or resize_short" % mode)


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


def bundle_reduction(bundle, w, h, default, pre=None):
    """reduction() of a w x h image for a bundle: its input size and its Preprocess.resize (or
    pre's, for a model type that resizes its own way). Model types call it as their reduction()."""
    pre = bundle.pre if pre is None else pre
    out_h, out_w = bundle.max_hw
    nw, nh = resized_size(pre.get("resize", default), w, h, out_h, out_w, pre.get("resize_short"))
    return reduction(w, h, nw, nh)
