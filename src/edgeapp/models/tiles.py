"""Tiling a page for a fixed-input detector, and merging the text boxes the tiles found.

A 640x640 detector that sees a 4000x3000 photo whole shrinks 35 px text to 5 px, below what DB
detects (measured: under 7 px at the detector's scale nothing is found, from 12 px everything). The
page is then scaled less and cut into overlapping tiles of exactly the detector's input shape; the
boxes of each tile are mapped back to page pixels and merged here: pieces of one line cut by a
vertical tile border are joined, the copies that two tiles both saw are kept once. Across a
horizontal border nothing is joined: each row of tiles keeps only the lines centred in its own band
of the page (the overlap is taller than a line, so that row saw them whole).
"""
import math

import cv2
import numpy as np


def origins(length, tile, overlap):
    """Start offsets of tiles covering [0, length): each tile whole inside the page (the last one
    moved back to end at the edge), neighbours overlapping by at least `overlap`."""
    if length <= tile:
        return [0]
    n = int(math.ceil((length - overlap) / float(tile - overlap)))
    return [int(round(i * (length - tile) / float(n - 1))) for i in range(n)]


def count(width, height, tile, overlap):
    return len(origins(width, tile, overlap)) * len(origins(height, tile, overlap))


def grid(width, height, tile, overlap):
    """(x, y) of every tile, row by row."""
    return [(x, y) for y in origins(height, tile, overlap) for x in origins(width, tile, overlap)]


def affordable_scale(width, height, want, max_tiles, tile, overlap):
    """The largest scale <= want at which the page takes at most max_tiles tiles."""
    s = want
    while s > 0.01 and count(int(round(width * s)), int(round(height * s)), tile, overlap) > max_tiles:
        s *= 0.95
    return s


def cores(starts, tile, length):
    """Each tile row's own band of the page, [top, bottom): the overlaps split in the middle. A
    line whose centre lies in a row's band is whole in that row's tiles when it is less high than
    the overlap (half the overlap on each side of the band); the other rows may see it cut."""
    ends = [s + tile for s in starts]
    tops = [0] + [(e + s) / 2.0 for e, s in zip(ends, starts[1:])]
    bottoms = tops[1:] + [max(length, tile)]
    return list(zip(tops, bottoms))


def merge_lines(boxes):
    """boxes: [(4x2 points, score, tile index)] in page pixels. Boxes of different tiles that lie on
    one line (similar height, mostly the same rows) and overlap horizontally are one line cut by
    a tile border, or the same line seen twice: each group becomes the rotated rectangle around all
    its points, scored by the length-weighted mean. Boxes of one tile are never joined (the
    detector kept them apart on purpose)."""
    if not boxes:
        return []
    groups = _group(_same_line(boxes))
    out = []
    for members in groups:
        pts = np.concatenate([boxes[i][0] for i in members]).astype(np.float32)
        lengths = [max(float(np.ptp(boxes[i][0][:, 0])), 1.0) for i in members]
        score = sum(boxes[i][1] * w for i, w in zip(members, lengths)) / sum(lengths)
        quad = pts[:4] if len(members) == 1 else cv2.boxPoints(cv2.minAreaRect(pts))
        out.append((quad, float(score)))
    return out


def _same_line(boxes):
    """n x n bool: box i and box j are pieces or copies of one line. Judged in the frame of the
    longer box of each pair (along its text and across it), so that the pieces of a long line
    photographed askew still match and its neighbour lines do not."""
    pts = np.stack([np.asarray(b[0], np.float32) for b in boxes])  # n x 4 x 2, tl tr br bl
    tile = np.array([b[2] for b in boxes])
    along = (pts[:, 1] - pts[:, 0]) + (pts[:, 2] - pts[:, 3])
    along /= np.maximum(np.linalg.norm(along, axis=1, keepdims=True), 1e-6)
    across = np.stack([-along[:, 1], along[:, 0]], axis=1)
    rel = pts[None, :, :, :] - pts.mean(1)[:, None, None, :]  # [frame i, box j, corner, xy]
    a = np.einsum("ijkc,ic->ijk", rel, along)
    c = np.einsum("ijkc,ic->ijk", rel, across)
    a0, a1, c0, c1 = a.min(2), a.max(2), c.min(2), c.max(2)
    own = np.arange(len(boxes))
    rows = np.minimum(c1, c1[own, own][:, None]) - np.maximum(c0, c0[own, own][:, None])
    h = c1 - c0
    low, high = np.minimum(h, h[own, own][:, None]), np.maximum(h, h[own, own][:, None])
    cols = np.minimum(a1, a1[own, own][:, None]) - np.maximum(a0, a0[own, own][:, None])
    same = (rows >= 0.6 * low) & (low >= 0.5 * high) & (cols > 0)
    length = a1[own, own] - a0[own, own]
    same = np.where(length[:, None] >= length[None, :], same, same.T)
    return same & (tile[:, None] != tile[None])


def _group(adjacent):
    """Connected components of a symmetric adjacency matrix, each a sorted list of indices."""
    n = len(adjacent)
    seen, groups = [False] * n, []
    for start in range(n):
        if seen[start]:
            continue
        seen[start], stack, members = True, [start], []
        while stack:
            i = stack.pop()
            members.append(i)
            for j in np.flatnonzero(adjacent[i]):
                if not seen[j]:
                    seen[j] = True
                    stack.append(int(j))
        groups.append(sorted(members))
    return groups


def inside(pts, big, share=0.5):
    """True when more than `share` of box pts lies inside the box `big` (both 4x2)."""
    area = cv2.contourArea(np.asarray(pts, np.float32))
    if area <= 0:
        return False
    inter, _ = cv2.intersectConvexConvex(np.asarray(pts, np.float32), np.asarray(big, np.float32))
    return inter > share * area
