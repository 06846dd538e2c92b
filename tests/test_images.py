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


# ---- reduced JPEG decoding (a model with a small input does not need every pixel) ---------------
def _jpeg(w, h):
    img = np.zeros((h, w, 3), np.uint8)
    cv2.rectangle(img, (w // 4, h // 4), (w // 2, h // 2), (255, 255, 255), -1)
    return cv2.imencode(".jpg", img)[1].tobytes()


@pytest.mark.parametrize("f", [1, 2, 4, 8])
def test_jpeg_is_decoded_smaller_when_the_model_allows(f):
    image, size = images.decode_reduced(_jpeg(803, 601), 10 ** 7, lambda w, h: f)
    assert size == (803, 601)
    assert image.shape == (-(-601 // f), -(-803 // f), 3)
    # The same picture: the white square is where it is at full size, scaled.
    ys, xs = np.nonzero(image[:, :, 0] > 128)
    assert abs(xs.min() * f - 803 // 4) <= f + 1 and abs(ys.max() * f - 601 // 2) <= f + 1


def test_other_formats_are_always_decoded_full_size():
    png = cv2.imencode(".png", np.zeros((60, 80, 3), np.uint8))[1].tobytes()
    image, size = images.decode_reduced(png, 10 ** 6, lambda w, h: 8)
    assert image.shape == (60, 80, 3) and size == (80, 60)


def test_reduced_decode_keeps_the_exif_turn_and_the_full_size():
    from PIL import Image
    import io

    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turned a quarter; OpenCV shows it upright, 600 wide and 800 high
    Image.new("RGB", (800, 600)).save(buf, "JPEG", exif=exif.tobytes())
    data = buf.getvalue()
    full = images.decode(data, 10 ** 7)
    assert full.shape == (800, 600, 3)
    image, size = images.decode_reduced(data, 10 ** 7, lambda w, h: 4)
    assert image.shape == (200, 150, 3) and size == (600, 800)


def test_rescale_maps_results_to_full_pixels():
    from edgeapp.results import rescale, result

    r = [result("face", 0, 0.9, 10, 20, 30, 40, {"keypoints": {"nose": [15.0, 25.0]}}),
         result("text", 0, 0.8, 1, 2, 3, 4, {"points": [[1, 2], [4, 2], [4, 6], [1, 6]]})]
    rescale(r, 4.0, 2.0)
    assert r[0]["location"] == {"left": 40.0, "top": 40.0, "width": 120.0, "height": 80.0}
    assert r[0]["extended"]["keypoints"] == {"nose": [60.0, 50.0]}
    assert r[1]["extended"]["points"] == [[4.0, 4.0], [16.0, 4.0], [16.0, 12.0], [4.0, 12.0]]


@pytest.mark.parametrize("mode,size,need,f", [
    ("stretch", (4000, 3000), (192, 48), 8),
    ("stretch", (640, 480), (192, 48), 2),
    ("letterbox", (640, 480), (640, 480), 1),
    ("letterbox", (4000, 3000), (640, 480), 4),
    ("text_line", (640, 480), (64, 48), 8),
    ("text_line", (3000, 60), (192, 48), 1),
])
def test_reduction_keeps_at_least_the_pixels_the_model_uses(mode, size, need, f):
    from edgeapp.models import fit

    w, h = size
    nw, nh = fit.resized_size(mode, w, h, 48 if need[1] == 48 else 640, 192 if need[1] == 48 else 640)
    assert (round(nw), round(nh)) == need
    assert fit.reduction(w, h, nw, nh) == f
