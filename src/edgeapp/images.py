"""Image bytes → BGR array, with the pixel count checked from the header before anything is decoded.

A few-KB PNG can declare 50000x50000 pixels; decoding it would allocate gigabytes. So the
dimensions are read from the format's header first and the image is refused if it is too big.
Only formats whose header we can read are accepted: JPEG, PNG, BMP, WebP.
"""
import struct

import cv2
import numpy as np

from edgeapp.errors import BadImage, TooLarge

FORMATS = "JPEG, PNG, BMP, WebP"

# OpenCV logs every undecodable upload as an "[ERROR]" line on stderr. That is the client's error,
# answered with 400, not the server's: keep only fatal messages (levels: 0 silent, 1 fatal, 2 error).
cv2.setLogLevel(1)


def image_size(data):
    """(format, width, height) from the header; raises BadImage for anything else."""
    if len(data) < 16:
        raise BadImage("the image is empty or truncated (%d bytes); send a JPEG, PNG, BMP or WebP file" % len(data))
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if data[12:16] != b"IHDR" or len(data) < 24:
            raise BadImage("broken PNG header")
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:2] == b"\xff\xd8":
        return ("jpeg",) + _jpeg_size(data)
    if data[:2] == b"BM" and len(data) >= 26:
        if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
            w, h = struct.unpack("<HH", data[18:22])
        else:
            w, h = struct.unpack("<ii", data[18:26])
        return "bmp", abs(w), abs(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        return ("webp",) + _webp_size(data)
    raise BadImage("not a supported image; send one of: %s" % FORMATS)


def _jpeg_size(data):
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise BadImage("broken JPEG: marker expected at byte %d" % i)
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg_len = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                break
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if seg_len < 2:
            break
        i += 2 + seg_len
    raise BadImage("broken JPEG: no frame header found (truncated file?)")


def _webp_size(data):
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        b = int.from_bytes(data[21:25], "little")
        return 1 + (b & 0x3FFF), 1 + ((b >> 14) & 0x3FFF)
    raise BadImage("broken WebP header")


# JPEG's DCT scaling: decoding at 1/2, 1/4 or 1/8 of the size skips most of the decoder's work.
REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode(data, max_pixels):
    """Bytes → HxWx3 uint8 BGR. Raises TooLarge before decoding a too-large image, BadImage if undecodable."""
    return decode_reduced(data, max_pixels)[0]


def decode_reduced(data, max_pixels, reduction=None):
    """decode(), but a JPEG is decoded reduction(width, height) times smaller (1, 2, 4 or 8).

    Returns (image, (width, height) of the full-size image, turned as the EXIF orientation says,
    as decode() would have returned it).
    """
    fmt, w, h = image_size(data)
    if w == 0 or h == 0:
        raise BadImage("the %s header declares a %dx%d image" % (fmt.upper(), w, h))
    if w * h > max_pixels:
        raise TooLarge("the image is %dx%d = %d pixels; the limit is %d pixels (EDGEAPP_MAX_PIXELS). "
                       "Scale it down before sending." % (w, h, w * h, max_pixels))
    f = reduction(w, h) if reduction is not None and fmt == "jpeg" else 1
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), REDUCED.get(f, cv2.IMREAD_COLOR))
    if image is None:
        raise BadImage("the %s image could not be decoded (corrupt or truncated?)" % fmt.upper())
    ih, iw = image.shape[:2]
    if f == 1:
        return image, (iw, ih)
    if abs(iw - (w + f - 1) // f) <= 1 and abs(ih - (h + f - 1) // f) <= 1:
        return image, (w, h)
    return image, (h, w)  # OpenCV applied an EXIF quarter turn: the header's width is now the height
