"""The request bodies: the image every case sends (a generated text page unless --image says
otherwise) as each endpoint wants it, in files the load clients read."""
import base64
import json
import os

BOUNDARY = "edgeapp-bench-7d1f0c"


def default_image(path):
    """A 640x480 white page with three lines of black text, as JPEG (made here, no download)."""
    import cv2
    import numpy as np

    img = np.full((480, 640, 3), 255, np.uint8)
    for text, y in (("HELLO WORLD 2026", 120), ("EdgeBoard benchmark", 260), ("Invoice 12345", 400)):
        cv2.putText(img, text, (40, y), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    with open(path, "wb") as f:
        f.write(buf.tobytes())


def image_info(data):
    try:
        from edgeapp.images import image_size

        fmt, w, h = image_size(data)
        return "%s %dx%d, %.1f KB" % (fmt.upper(), w, h, len(data) / 1024.0)
    except Exception:
        return "%.1f KB" % (len(data) / 1024.0)


def write_bodies(work, image, mid):
    """{endpoint: (path, body file, content type)} for one model id."""
    b64 = json.dumps({"image": base64.b64encode(image).decode("ascii"), "show": False}).encode("ascii")
    form = ("--%s\r\nContent-Disposition: form-data; name=\"mids\"\r\n\r\n[%d]\r\n"
            "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"image.jpg\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n" % (BOUNDARY, mid, BOUNDARY)).encode("ascii")
    form += image + ("\r\n--%s--\r\n" % BOUNDARY).encode("ascii")
    out = {}
    for endpoint, path, body, ctype in (
            ("binary", "/api/model/service/binary?mid=%d&show=0" % mid, image, "application/octet-stream"),
            ("base64", "/api/model/service/base64?mid=%d" % mid, b64, "application/json"),
            ("multipart", "/api/model/service/multipart?show=0", form, "multipart/form-data; boundary=" + BOUNDARY)):
        fn = os.path.join(work, "body-%d-%s" % (mid, endpoint))
        with open(fn, "wb") as f:
            f.write(body)
        out[endpoint] = (path, fn, ctype)
    return out
