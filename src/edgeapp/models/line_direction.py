"""Which way up a text line is (0 or 180 degrees), by the direction classifier's vote over windows
of the line.

The classifier (PP-OCR cls) takes 48 x 192: a long line squeezed into it is unreadable, and it then
says "180" with high confidence about upright lines (measured: 15 of 50 rendered lines of 25:1 to
120:1 got the wrong answer). So the line is scaled to the classifier's height and up to `votes`
windows of its width, spread along the line, are classified; their scores are averaged.
"""
import numpy as np

from edgeapp.models import fit
from edgeapp.models.line_pieces import MAX_LINE_ASPECT


def windows(line, width, votes):
    """Up to `votes` column ranges of `width`, evenly spread from the line's start to its end."""
    w = line.shape[1]
    if w <= width:
        return [(0, w)]
    n = min(votes, -(-w // width))
    starts = np.linspace(0, w - width, n).round().astype(int)
    return [(int(s), int(s) + width) for s in starts]


def direction(classifier, crop, accel, votes=3):
    """(label, score) of the crop: the classifier's labels, its mean scores over the windows."""
    height, width = classifier.bundle.max_hw
    line = fit.text_line(crop, height, height * MAX_LINE_ASPECT, classifier.fit.interp)[0]
    scores = [accel.run(classifier.bundle.id, [classifier.preprocess(line[:, a:b])])[0].reshape(-1)
              for a, b in windows(line, width, votes)]
    _, label, score = classifier.postprocess(np.mean(scores, axis=0))
    return label, score
