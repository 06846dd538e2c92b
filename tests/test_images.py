"""Image decoding: sizes read from headers before any pixel is decoded."""
import cv2
import numpy as np
import pytest

from edgeapp import images
from edgeapp.errors import BadImage, TooLarge
from textimages import png_header


@pytest.mark.parametrize("ext,fmt", [(".png", "png"), (".jpg", "jpeg"), (".bmp", "bmp"), (".webp", "webp")])
def test_header_sizes_match_the_real_size(ext, fmt):
    img = np.random.randint(0, 255, (37, 91, 3), np.uint8)
    data = cv2.imencode(ext, img)[1].tobytes()
    assert images.image_size(data) == (fmt, 91, 37)
    assert images.decode(data, 10 ** 6).shape == (37, 91, 3)


def test_lossless_webp_header():
    img = np.random.randint(0, 255, (20, 30, 3), np.uint8)
    data = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()
    assert images.image_size(data)[1:] == (30, 20)


def test_pixel_bomb_is_refused_from_the_header():
    bomb = png_header(50000, 50000)
    assert len(bomb) < 100
    with pytest.raises(TooLarge) as e:
        images.decode(bomb, 40 * 10 ** 6)
    assert "50000x50000" in e.value.msg and e.value.status == 413


@pytest.mark.parametrize("data", [b"", b"GIF89a" + b"\0" * 20, b"not an image" * 3, b"\xff\xd8\xff" + b"\0" * 20])
def test_non_images_are_refused(data):
    with pytest.raises(BadImage) as e:
        images.decode(data, 10 ** 6)
    assert e.value.status == 400 and e.value.msg


def test_truncated_jpeg_is_refused_or_decoded_partially():
    img = np.random.randint(0, 255, (64, 64, 3), np.uint8)
    data = cv2.imencode(".jpg", img)[1].tobytes()
    with pytest.raises(BadImage):
        images.decode(data[:30], 10 ** 6)


def test_grayscale_png_decodes_to_three_channels():
    data = cv2.imencode(".png", np.zeros((10, 12), np.uint8))[1].tobytes()
    assert images.decode(data, 10 ** 6).shape == (10, 12, 3)
