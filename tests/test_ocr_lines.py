"""Reading text lines of every length with the bundled PP-OCRv4 models (mid 3), on lines rendered
with real fonts (tools/ocrset.py). Each assertion is the exact text: the lines are clean renders."""
import cv2
import numpy as np
import pytest

from tools import ocrset

EN = ("The morning train left the station a few minutes late because of the heavy fog over the "
      "river, and every box in the warehouse carries a label with its weight, its owner and the "
      "date it arrived at the dock. Please read the safety notes before you switch on the machine "
      "for the first time, then keep this receipt because you will need it to return the item.")
ZH40 = "仓库里的每个箱子都贴着标签，写明重量和到货日期。第一次打开机器之前，请先仔细阅读安全说明。"


@pytest.fixture(scope="module")
def ocr(local_engine):
    return local_engine


def read_line(engine, image):
    text, _ = engine.models[3].recognizer.recognize(image, engine.accel)
    return text


def english_line(ratio, font="DejaVuSans", size=32):
    """The longest prefix of EN (whole words) whose line is at most ratio:1."""
    words = EN.split()
    n = max(k for k in range(1, len(words) + 1) if ocrset.aspect(" ".join(words[:k]), font, size) <= ratio)
    text = " ".join(words[:n])
    return text, ocrset.render_line(text, font, size)


@pytest.mark.parametrize("ratio,font", [(60, "DejaVuSans"), (100, "LiberationSerif")])
def test_long_english_lines_read_exactly(ocr, ratio, font):
    text, image = english_line(ratio, font)
    assert image.shape[1] / image.shape[0] > ratio - 6   # really that long
    assert read_line(ocr, image) == text


def test_forty_chinese_characters_read_exactly(ocr):
    image = ocrset.render_line(ZH40, "WenQuanYiMicroHei", 32)
    assert image.shape[1] / image.shape[0] > 35
    assert read_line(ocr, image) == ZH40


@pytest.mark.parametrize("text,font", [
    ("订单号A2024-0318的商品已经发货，运费12.50元，客服电话400-820-8820", "WenQuanYiZenHei"),
    ("Invoice No. 48213: EUR 1,245.50 due 2024-03-18 (+49 171 555 0192)", "LiberationSans"),
])
def test_mixed_chinese_english_digits_and_punctuation(ocr, text, font):
    assert read_line(ocr, ocrset.render_line(text, font, 32)) == text


def on_page(line, margin=40):
    h, w = line.shape[:2]
    page = np.full((h + 2 * margin, w + 2 * margin, 3), 255, np.uint8)
    page[margin:margin + h, margin:margin + w] = line
    return page


def test_the_pipeline_reads_an_upside_down_long_line(ocr):
    text, line = english_line(30, "DejaVuSerif")
    results = ocr.infer(3, cv2.rotate(on_page(line), cv2.ROTATE_180))["result"]
    assert [r["label"] for r in results] == [text]
    assert results[0]["extended"]["direction"] == "180"


def test_the_pipeline_reads_a_line_turned_on_its_side(ocr):
    # A crop taller than 1.5x its width is read turned on its side, as PaddleOCR does.
    text = "Keep this receipt for 30 days"
    line = cv2.rotate(ocrset.render_line(text, "DejaVuSans", 32), cv2.ROTATE_90_CLOCKWISE)
    results = ocr.infer(3, on_page(line))["result"]
    assert [r["label"] for r in results] == [text]
    pts = np.array(results[0]["extended"]["points"])
    assert np.ptp(pts[:, 1]) > 5 * np.ptp(pts[:, 0])   # the box is the tall one on the page
