"""Cutting a text line that is wider than the recogniser's input into pieces it reads at its
trained scale, and joining the pieces' texts.

PP-OCR recognisers are trained on lines scaled to height 48 and at most 320 wide; a longer line
squeezed into the input becomes unreadable (a 60:1 line would be narrowed five times). So a line
scaled to height 48 is cut into windows as wide as the input. Each window reads its own part of
the line plus a margin on either side (context: a character cut by the window's edge is read whole
by the neighbouring window). The boundaries between the windows' own parts are put in the widest
gaps of the line's column ink profile (between words, else between characters), so no character
sits on a boundary; each window keeps the characters whose CTC position falls in its own part,
and a character both neighbours place by their boundary is kept once.
"""
import collections

import cv2
import numpy as np

STRIDE = 8  # input pixels per CTC time step (PP-OCR rec: width / 8 steps)
# The widest line read unsqueezed, as width / height; a wider one is squeezed to it. A bound on one
# line's windows, runs and memory (160:1 at 48 x 320: about 32 windows, 7680 x 48 pixels).
MAX_LINE_ASPECT = 160
GAP_KEEP = 12  # columns of a wide gap left before the ink after a cut (a quarter of the height)
SEAM = 12  # columns each side of a boundary where both windows' characters are compared

# One window: the line's columns [start, end) are read; characters at [own_start, own_end) kept.
Window = collections.namedtuple("Window", "start end own_start own_end")


def ink_profile(line):
    """Ink pixels per column of a line image (BGR or grey): Otsu's threshold, and the class that
    holds most of the pixels is the background (dark text on light paper, or light on dark)."""
    grey = cv2.cvtColor(line, cv2.COLOR_BGR2GRAY) if line.ndim == 3 else line
    _, dark = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    ink = dark if dark.mean() < 0.5 else 1 - dark
    return ink.sum(axis=0).astype(np.float32)


def plan(profile, window, margin):
    """Windows covering the whole line (len(profile) columns), each at most `window` wide."""
    width = len(profile)
    if width <= window:
        return [Window(0, width, 0, float("inf"))]
    out, own_start = [], 0
    while True:
        start = max(0, own_start - margin)
        end = min(width, start + window)
        if end == width:
            out.append(Window(start, end, own_start, float("inf")))  # whatever the padding reads too
            return out
        cut = best_cut(profile, own_start + (end - margin - own_start) // 2, end - margin)
        out.append(Window(start, end, own_start, cut))
        own_start = cut


def best_cut(profile, lo, hi):
    """The column in [lo, hi) to cut at: in the widest run of columns without ink, else of the
    faintest columns (the rightmost such run on a tie: fewer windows). In the run's middle, or
    for a wide run GAP_KEEP columns before its end: the window after it wastes no blank."""
    part = profile[lo:hi]
    faint = part <= part.min()
    best, best_len, run = hi - 1, 0, 0
    for i, f in enumerate(faint):
        run = run + 1 if f else 0
        if run and run >= best_len:
            best, best_len = max(i - run // 2, i - GAP_KEEP), run
    return lo + best


def decode(probs, chars):
    """Greedy CTC over T x C probabilities: [(character, time step, confidence)], the step being
    the middle of the character's run of steps."""
    best = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    out, t = [], 0
    while t < len(best):
        end = t
        while end + 1 < len(best) and best[end + 1] == best[t]:
            end += 1
        if best[t] != 0:
            c = chars[best[t]] if best[t] < len(chars) else ""
            out.append((c, (t + end) / 2.0, float(conf[t:end + 1].max())))
        t = end + 1
    return out


def placed(decoded, win):
    """A window's decoded characters as (character, line column, confidence)."""
    return [(c, win.start + (step + 0.5) * STRIDE, conf) for c, step, conf in decoded]


def keep_own(chars, win, seam=SEAM):
    """The characters (placed()) of one window in its own part, widened by `seam` columns on
    each side: near a boundary either window may place a character a step to the other side
    (measured: 7-8 columns), so both keep it and stitch() keeps one."""
    return [ch for ch in chars if win.own_start - seam <= ch[1] < win.own_end + seam]


def stitch(pieces, windows, seam=SEAM):
    """One sequence from every window's kept characters, in line order: a character that two
    neighbouring windows both read near their boundary (the same character, within `seam`
    columns of the other) is kept once."""
    out = []
    for chars, win in zip(pieces, windows):
        # This window keeps from own_start - seam: its twins lie up to a seam further back.
        near = [k for k, o in enumerate(out) if o[1] >= win.own_start - 2 * seam]
        for ch in chars:
            twins = [k for k in near if out[k][0] == ch[0] and abs(out[k][1] - ch[1]) <= seam]
            if twins:
                near.remove(min(twins, key=lambda k: abs(out[k][1] - ch[1])))
            else:
                out.append(ch)
    return sorted(out, key=lambda ch: ch[1])


def join(chars):
    """The line's text and confidence from its stitched characters."""
    text = []
    for c, _, _ in chars:
        if c == " " and (not text or text[-1] == " "):
            continue
        text.append(c)
    score = float(np.mean([conf for _, _, conf in chars])) if chars else 0.0
    return "".join(text).strip(), score
