"""Turning a page upright before OCR, and mapping points of the upright page back.

The doc-orientation model (mid 5) answers how far a page photo is turned clockwise: 0, 90, 180 or
270 degrees (checked on pages turned every way: a page turned 90 degrees counter-clockwise is
labelled "270"). The OCR pipeline reads the page turned back by that much; the points it returns
are mapped back here to the pixels of the image it was sent.
"""
import cv2
import numpy as np

# label -> the cv2.rotate code that turns the page back upright
UNDO = {"90": cv2.ROTATE_90_COUNTERCLOCKWISE, "180": cv2.ROTATE_180, "270": cv2.ROTATE_90_CLOCKWISE}


def upright(image, label):
    """(the page turned upright, a function mapping Nx2 points of it back to `image` pixels)."""
    if label not in UNDO:
        return image, _same
    h, w = image.shape[:2]
    return cv2.rotate(image, UNDO[label]), lambda pts: to_turned(pts, label, w, h)


def to_turned(pts, label, width, height):
    """Points of the upright page -> the same points in the w x h page turned `label` degrees
    clockwise (pixel-edge coordinates, so corners map onto corners)."""
    pts = np.asarray(pts, np.float32)
    u, v = pts[:, 0], pts[:, 1]
    if label == "90":  # upright = the page turned back 90 degrees counter-clockwise
        return np.stack([width - v, u], axis=1)
    if label == "270":
        return np.stack([v, height - u], axis=1)
    if label == "180":
        return np.stack([width - u, height - v], axis=1)
    return pts


def _same(pts):
    return np.asarray(pts, np.float32)
