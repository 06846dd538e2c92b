"""Text detection that keeps every line (issue 22): a big photographed page read in tiles, lines
merged across tile borders, a page turned upright by the page orientation model (mid 5).

Pages are rendered with real fonts by tools/ocrset.py; their quads are the ground truth. Text is
compared with ocrset.cer, which ignores spaces (the recogniser's word gaps are not this file's).
"""
import copy
import random

import cv2
import numpy as np
import pytest

from edgeapp.errors import UnknownModel
from edgeapp.models import page_turn, tiles
from edgeapp.models.ocr import OcrPipeline
from tools import ocrset

BIG_PAGE = ["Delivery note 4812", "Keep this receipt",
            "The library opens at nine on weekdays and closes early on the first Sunday of each month, "
            "so plan your visit ahead and bring the card you were given at the desk", "Total EUR 245.50", "Paid by card", "Station Platform 3"]
SHORT = ["Total", "EUR 12.50", "Date", "Qty 3", "Paid", "Item 42"]


class CountingAccel:
    """The engine's accelerator, counting detector runs."""

    def __init__(self, accel, mid):
        self.accel, self.mid, self.runs = accel, mid, 0

    def run(self, mid, inputs, **kw):
        self.runs += mid == self.mid
        return self.accel.run(mid, inputs, **kw)


def best_iou(quad, boxes):
    return max([ocrset.quad_iou(quad, np.asarray(b, np.float32)) for b in boxes] or [0.0])


@pytest.fixture(scope="module")
def big_photo():
    """A 4000x3000 phone photo of a page whose lines are ~30 px high: one 640x640 pass shrinks
    them to ~5 px."""
    img, truth = ocrset.render_page(BIG_PAGE, "DejaVuSans", 32, margin=600, spacing=3.2)
    return ocrset.photograph(img, truth, random.Random(7), size=(4000, 3000))


@pytest.fixture(scope="module")
def detector(local_engine):
    return local_engine.models[3].detector


def test_one_pass_loses_the_small_lines_of_a_big_photo(local_engine, detector, big_photo):
    photo, truth = big_photo
    one_pass = copy.copy(detector)
    one_pass.max_tiles = 0
    boxes = [pts for pts, _ in one_pass.detect(photo, local_engine.accel)]
    assert sum(best_iou(q, boxes) >= 0.5 for _, q in truth) <= len(truth) // 2


@pytest.fixture(scope="module")
def big_read(local_engine, detector, big_photo):
    """mid 3 on the big photo: (its results, how many detector runs it took)."""
    accel = CountingAccel(local_engine.accel, detector.bundle.id)
    return local_engine.models[3].infer(big_photo[0], accel), accel.runs


def test_tiles_find_every_line_of_a_big_photo_in_reading_order(detector, big_photo, big_read):
    _, truth = big_photo
    found, runs = big_read
    assert 2 <= runs <= 1 + detector.max_tiles
    boxes = [np.asarray(r["extended"]["points"], np.float32) for r in found]
    assert len(boxes) == len(truth)
    for (_, quad), box in zip(truth, boxes):  # in reading order, each line once and whole
        assert ocrset.quad_iou(quad, box) >= 0.5
    # The long line was cut by tile borders (no one tile holds it) and merged back:
    scale = tiles.affordable_scale(4000, 3000, 1.0, detector.max_tiles, 640, detector.tile_overlap)
    left, right = boxes[2][:, 0].min() * scale, boxes[2][:, 0].max() * scale
    assert not any(x0 <= left and right <= x0 + 640 for x0 in tiles.origins(int(4000 * scale), 640, 96))


def test_mid3_reads_the_lines_of_a_big_photo(big_photo, big_read):
    _, truth = big_photo
    found, _ = big_read
    assert len(found) == len(truth)
    for (text, _), r in zip(truth, found):
        if len(text) < 20:  # short lines exactly (spaces aside); the long one nearly
            assert ocrset.cer(text, r["label"]) == 0, (text, r["label"])
        else:
            assert ocrset.cer(text, r["label"]) <= 0.05, (text, r["label"])


def test_lines_cut_by_tile_borders_come_back_whole(local_engine, detector):
    """A 1100x1100 page in tiles at full scale (2x2 tiles of 640 overlapping at x and y from 460
    to 640): a long line crosses the vertical borders, another sits across the horizontal ones."""
    texts = ["The morning train left the station a few minutes late", "Fresh bread is baked before dawn"]
    page = np.full((1100, 1100, 3), 255, np.uint8)
    truth = []
    for text, (x, y) in zip(texts, [(60, 200), (330, 615)]):
        line = ocrset.render_line(text, "LiberationSans", 30)
        h, w = line.shape[:2]
        page[y:y + h, x:x + w] = line
        truth.append(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32))
    assert tiles.grid(1100, 1100, 640, detector.tile_overlap) == [(0, 0), (460, 0), (0, 460), (460, 460)]
    boxes = [pts for pts, _ in detector.detect_tiled(page, 1.0, [], local_engine.accel)]
    assert len(boxes) == 2
    for quad in truth:
        assert best_iou(quad, boxes) >= 0.5


@pytest.fixture(scope="module")
def turned_page():
    """Short lines (where a sideways crop is not tall enough to be read turned) on a page turned
    90 degrees counter-clockwise."""
    img, truth = ocrset.render_page(SHORT, "DejaVuSans", 32)
    return ocrset.rotate_page(img, truth, 90)


def test_page_orientation_reads_a_turned_page_with_points_in_the_image_sent(local_engine, turned_page):
    page, truth = turned_page
    ocr = local_engine.models[3]
    assert ocr.page_orientation.bundle.id == 5      # on in the bundle
    found = ocr.infer(page, local_engine.accel)
    assert [r["label"].replace(" ", "") for r in found] == [t.replace(" ", "") for t, _ in truth]
    for (_, quad), r in zip(truth, found):
        assert ocrset.quad_iou(quad, np.asarray(r["extended"]["points"], np.float32)) >= 0.5


def test_page_orientation_is_optional(local_engine, turned_page):
    # Not installed: mid 3 loads without it. Installed but not loaded (e.g. dropped by the memory
    # budget): the page is read as it was sent, and nothing fails.
    without = {mid: b for mid, b in local_engine.bundles.items() if mid != 5}
    ocr = OcrPipeline(local_engine.bundles[3], without)
    assert ocr.page_orientation is None and 5 not in ocr.needs()

    class NotLoaded:
        def run(self, mid, inputs):
            if mid == 5:
                raise UnknownModel("model 5 is not loaded on the accelerator")
            return local_engine.accel.run(mid, inputs)

    page, truth = turned_page
    found = local_engine.models[3].infer(page, NotLoaded())
    assert found and all(r["extended"]["points"] for r in found)


# ---- the geometry, without models ----

@pytest.mark.parametrize("label,turn", [("90", cv2.ROTATE_90_CLOCKWISE), ("180", cv2.ROTATE_180),
                                        ("270", cv2.ROTATE_90_COUNTERCLOCKWISE)])
def test_points_of_the_upright_page_map_back_to_the_turned_one(label, turn):
    upright_page = np.zeros((30, 50), np.uint8)
    upright_page[4, 7] = 255  # the pixel whose square is (7, 4)-(8, 5)
    turned = cv2.rotate(upright_page, turn)  # the page as sent: turned `label` degrees clockwise
    again, back = page_turn.upright(turned, label)
    assert np.array_equal(again, upright_page)
    y, x = np.argwhere(turned == 255)[0]
    corners = back(np.array([[7, 4], [8, 4], [8, 5], [7, 5]], np.float32))
    assert corners.min(0).tolist() == [x, y] and corners.max(0).tolist() == [x + 1, y + 1]


def test_tile_origins_cover_the_page_with_the_overlap_and_stay_inside():
    for length in (640, 641, 1200, 1847, 4000):
        starts = tiles.origins(length, 640, 96)
        assert starts[0] == 0 and starts[-1] + 640 == max(length, 640)
        assert all(b - a <= 640 - 96 for a, b in zip(starts, starts[1:]))
    assert tiles.count(1100, 1100, 640, 96) == 4 and tiles.count(1200, 1100, 640, 96) == 6
    assert tiles.affordable_scale(4000, 3000, 1.0, 6, 640, 96) < 0.4


def quad(x0, y0, x1, y1, slope=0.0):
    """A box from x0 to x1 whose top edge is y0 at x0 and rises by slope per pixel."""
    return np.array([[x0, y0], [x1, y0 + slope * (x1 - x0)], [x1, y1 + slope * (x1 - x0)], [x0, y1]],
                    np.float32)


def test_merge_joins_pieces_of_a_line_from_neighbouring_tiles():
    merged = tiles.merge_lines([(quad(100, 50, 600, 70), 0.9, 0), (quad(560, 51, 900, 71), 0.8, 1)])
    assert len(merged) == 1
    box, score = merged[0]
    assert box[:, 0].min() == pytest.approx(100, abs=1) and box[:, 0].max() == pytest.approx(900, abs=1)
    assert 0.8 < score < 0.9


def test_merge_keeps_one_copy_of_a_line_both_tiles_saw():
    merged = tiles.merge_lines([(quad(580, 50, 620, 70), 0.9, 0), (quad(581, 50, 621, 70), 0.9, 1)])
    assert len(merged) == 1


def test_merge_joins_a_skewed_line_but_not_its_neighbours():
    slope = 0.04  # a line seen askew: its pieces climb 40 px over 1000 px, lines are 30 px apart
    boxes = [(quad(0, 100, 600, 118, slope), 0.9, 0), (quad(560, 100 + 560 * slope, 1000, 118 + 560 * slope, slope), 0.9, 1),
             (quad(0, 130, 600, 148, slope), 0.9, 0), (quad(560, 130 + 560 * slope, 1000, 148 + 560 * slope, slope), 0.9, 1)]
    merged = tiles.merge_lines(boxes)
    assert len(merged) == 2
    for box, _ in merged:
        assert np.ptp(box[:, 0]) == pytest.approx(1000, abs=2)


def test_merge_leaves_apart_what_one_tile_kept_apart_and_lines_that_do_not_touch():
    boxes = [(quad(100, 50, 300, 70), 0.9, 0), (quad(290, 50, 500, 70), 0.9, 0),  # one tile: two boxes
             (quad(700, 50, 900, 70), 0.9, 1),                                    # a gap away
             (quad(100, 50, 300, 120), 0.9, 1)]                                   # far taller: not one line
    assert len(tiles.merge_lines(boxes)) == 4


def test_each_row_of_tiles_owns_the_middle_of_its_overlaps():
    starts = tiles.origins(1100, 640, 96)
    assert starts == [0, 460]
    assert tiles.cores(starts, 640, 1100) == [(0, 550.0), (550.0, 1100)]
    assert tiles.cores([0], 640, 500) == [(0, 640)]
