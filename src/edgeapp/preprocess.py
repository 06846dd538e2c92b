"""Image → tensor steps shared by the model types (numpy + OpenCV only, no Paddle Lite).

Every step writes a tensor no larger than the bundle's input_shape: that bound is what keeps the
accelerator's memory fixed (DESIGN.md, "Memory").
"""
import math

import cv2
import numpy as np


class Letterbox:
    """How an image was placed in a fixed canvas: original = canvas / scale."""

    def __init__(self, scale, width, height):
        self.scale = scale
        self.width = width    # the resized image inside the canvas
        self.height = height


def letterbox(image, out_h, out_w):
    """Resize keeping the aspect ratio so the image fits out_h x out_w; the rest is padding.

    Returns (resized image, Letterbox). The caller pads while normalising.
    """
    h, w = image.shape[:2]
    scale = min(out_h / float(h), out_w / float(w))
    nh = max(1, min(out_h, int(round(h * scale))))
    nw = max(1, min(out_w, int(round(w * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    return resized, Letterbox(scale, nw, nh)


def text_line(image, out_h, max_w):
    """Resize a text-line crop to height out_h, keeping its aspect, width capped at max_w."""
    h, w = image.shape[:2]
    nw = int(math.ceil(out_h * w / float(max(h, 1))))
    nw = max(1, min(max_w, nw))
    return cv2.resize(image, (nw, out_h), interpolation=cv2.INTER_LINEAR)


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


class Normalize:
    """A bundle's Preprocess normalisation: (pixel/255 - mean) / std, channel order, CHW, padding."""

    def __init__(self, pre, mean=HALF, std=HALF):
        self.shift = np.asarray(pre.get("mean", mean), dtype=np.float32) * 255.0
        self.scale = 1.0 / (np.asarray(pre.get("std", std), dtype=np.float32) * 255.0)
        self.rgb = pre.get("channel_order", "BGR").upper() == "RGB"

    def tensor(self, image, canvas_hw):
        """HWC uint8 BGR -> 1x3xHxW float32, zero-padded bottom/right to canvas_hw.

        Padding with 0 after normalisation means "the mean colour": the networks read it as background.
        """
        ch, cw = canvas_hw
        h, w = image.shape[:2]
        if h > ch or w > cw:
            raise ValueError("image %dx%d does not fit the %dx%d canvas" % (w, h, cw, ch))
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if self.rgb:
            image = image[:, :, ::-1]
        out = np.zeros((1, 3, ch, cw), dtype=np.float32)
        out[0, :, :h, :w] = ((image.astype(np.float32) - self.shift) * self.scale).transpose(2, 0, 1)
        return out
