"""A fitted image -> the model's input tensor: a bundle's Preprocess normalisation (numpy + OpenCV
only, no Paddle Lite). The resize before it is edgeapp.models.fit's.

Every tensor has exactly the bundle's input_shape: that bound is what keeps the accelerator's
memory fixed (DESIGN.md, "Memory").
"""
import cv2
import numpy as np

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
