"""tools/ocrset.py: the OCR test set is deterministic, its ground truth follows every transform,
and its scores (cer, space_errors, quad_iou) count what they say."""
import random

import cv2
import numpy as np
import pytest

from tools import ocrset

INK = 128  # darker than this is ink (text is drawn at grey 0-60 on white)


def _mask(shape, quads, grow=0):
    """Pixels inside any of the quads (grown by `grow` pixels)."""
    m = np.zeros(shape[:2], np.uint8)
    for q in quads:
        cv2.fillConvexPoly(m, np.round(np.asarray(q)).astype(np.int32), 255)
    return cv2.dilate(m, np.ones((2 * grow + 1,) * 2, np.uint8)) if grow else m


def _ink_outside(img, truth, grow=2):
    """Count of ink pixels that lie outside every ground-truth quad."""
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return int(((gray < INK) & (_mask(gray.shape, [q for _, q in truth], grow) == 0)).sum())


def _ink_in_each(img, truth):
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return [int(((gray < INK) & (_mask(gray.shape, [q]) > 0)).sum()) for _, q in truth]


def test_line_set_is_the_same_for_the_same_seed_and_covers_every_group():
    a, b, c = ocrset.line_set(5, per_group=1), ocrset.line_set(5, per_group=1), ocrset.line_set(6, per_group=1)
    assert [t for _, _, t in a] == [t for _, _, t in b]
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert [t for _, _, t in a] != [t for _, _, t in c]
    assert [g for g, _, _ in a] == ["en 4-8 words", "en 12-16 words", "en 60:1", "en 100:1", "zh 6-28 chars",
                                    "zh 40 chars", "zh+en mixed", "digits"]


def test_line_groups_have_the_lengths_they_are_named_after():
    lines = {g: (img, text) for g, img, text in ocrset.line_set(1, per_group=1)}
    aspect = {g: img.shape[1] / img.shape[0] for g, (img, _) in lines.items()}
    assert 4 <= len(lines["en 4-8 words"][1].split()) <= 8
    assert 12 <= len(lines["en 12-16 words"][1].split()) <= 16
    assert 60 <= aspect["en 60:1"] < 70 and 100 <= aspect["en 100:1"] < 110
    assert len(lines["zh 40 chars"][1]) == 40
    assert any(ch.isdigit() for ch in lines["digits"][1])


def test_render_line_is_dark_text_tight_on_white():
    img = ocrset.render_line("Quick brown fox 42", "DejaVuSans", 30)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    pad = 30 // 6
    rows, cols = np.where(gray < INK)
    assert img.dtype == np.uint8 and img.shape[2] == 3
    assert gray[0].min() == 255 and gray[-1].min() == 255 and gray[:, 0].min() == 255
    assert abs(rows.min() - pad) <= 3 and abs(gray.shape[0] - 1 - rows.max() - pad) <= 3
    assert abs(cols.min() - pad) <= 3 and abs(gray.shape[1] - 1 - cols.max() - pad) <= 3  # glyph bearings


@pytest.mark.parametrize("turn", [0, 5.5, -7, 90, 180, 270])
def test_every_ink_pixel_of_a_page_lies_in_its_line_quads(turn):
    img, truth = ocrset.render_page(["The first line of text", "and a second, longer line of text"],
                                    "LiberationSerif", 28)
    if turn:
        img, truth = ocrset.rotate_page(img, truth, turn)
    assert _ink_outside(img, truth) == 0
    assert min(_ink_in_each(img, truth)) > 200
    if turn in (90, 270):  # a quarter turn: each quad's first edge (the text's top) is vertical
        (x0, y0), (x1, y1) = truth[0][1][:2]
        assert abs(x1 - x0) < 1 and abs(y1 - y0) > 100


def test_a_photographed_page_keeps_its_text_inside_the_warped_quads():
    img, truth = ocrset.render_page(["Photographed pages are warped", "blurred and compressed"], "DejaVuSans", 30)
    h, w = img.shape[:2]
    page = ("page", np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32))
    photo, warped = ocrset.photograph(img, truth + [page], random.Random(3))
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    paper = cv2.erode(_mask(gray.shape, [warped[-1][1]]), np.ones((13, 13), np.uint8))
    paper[_mask(gray.shape, [q for _, q in warped[:-1]], grow=3) > 0] = 0
    assert gray[paper > 0].min() > 110  # no ink on the paper outside the line quads
    assert all(np.percentile(gray[_mask(gray.shape, [q]) > 0], 5) < 90 for _, q in warped[:-1])
    assert not np.allclose(warped[0][1], truth[0][1], atol=2)  # the quads did move


def test_page_groups_do_not_change_when_others_are_left_out():
    alone = ocrset.page_set(2, groups=("turned 90",))
    with_others = [p for p in ocrset.page_set(2, groups=("page en", "turned 90")) if p[0] == "turned 90"]
    assert len(alone) == 1 and np.array_equal(alone[0][1], with_others[0][1])
    assert [t for t, _ in alone[0][2]] == [t for t, _ in with_others[0][2]]


def test_cer_ignores_spaces_and_width_forms_and_space_errors_count_them():
    assert ocrset.cer("hello world", "helloworld") == 0
    assert ocrset.cer("abcd", "abed") == 0.25
    assert ocrset.cer("价格：12，5", "价格:12,5") == 0  # full-width forms are the same character
    assert ocrset.cer("abc", "") == 1 and ocrset.cer("", "x") == 1
    assert ocrset.space_errors("hello world", "helloworld") == 1
    assert ocrset.space_errors("ab cd", "a bcd") == 2
    assert ocrset.space_errors("one two three", "one twoo three") == 0


def test_quad_iou():
    square = [[0, 0], [10, 0], [10, 10], [0, 10]]
    assert ocrset.quad_iou(square, square) == pytest.approx(1)
    assert ocrset.quad_iou(square, square[::-1]) == pytest.approx(1)  # vertex order does not matter
    assert ocrset.quad_iou(square, [[5, 0], [15, 0], [15, 10], [5, 10]]) == pytest.approx(1 / 3.0)
    assert ocrset.quad_iou(square, [[20, 0], [30, 0], [30, 10], [20, 10]]) == 0
