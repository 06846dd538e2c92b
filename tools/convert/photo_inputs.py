#!/usr/bin/env python3
"""Real photos as a model's input tensors, for the conversion check. Runs under the SERVICE venv.

    .venv/bin/python tools/convert/photo_inputs.py OUT.npz --shape 1,3,H,W --preprocess JSON PHOTO...

Each photo is stretched to W x H and normalised with the bundle's Preprocess (mean, std,
channel_order) by the service's own code (edgeapp.models.fit, with its one interpolation rule,
and edgeapp.models.tensor). A converted model is checked on these as well as the runtimes agree on
noise: real images reach the value ranges and activations that a seeded random input never does.
OUT.npz: "input" = N x 1x3xHxW float32, in the order of the photos given.
"""
import argparse
import json
import sys

import cv2
import numpy as np

from edgeapp.models import fit, tensor


def photo_tensor(path, shape, pre):
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit("error: cannot read the photo %s" % path)
    return image_tensor(image, shape, pre)


def image_tensor(image, shape, pre):
    """A BGR image as the bundle's input tensor: stretched to its size, normalised as it says."""
    h, w = shape[2], shape[3]
    image, _ = fit.stretch(image, h, w)
    return tensor.Normalize(pre).tensor(image, (h, w))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("photos", nargs="+")
    p.add_argument("--shape", required=True)
    p.add_argument("--preprocess", default="{}", help="the bundle's Preprocess, as JSON")
    args = p.parse_args(argv)
    shape = [int(x) for x in args.shape.split(",")]
    pre = json.loads(args.preprocess)
    np.savez(args.out, input=np.stack([photo_tensor(path, shape, pre) for path in args.photos]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
