"""Pack a cross-built Paddle Lite Python module into a wheel laid out like PyPI's paddlelite.

    python3 tools/arm/lite_wheel.py LITE_SO INIT_PY OUT.whl

LITE_SO is the built liblite_pybind.so (it becomes paddlelite/lite.so), INIT_PY is Paddle Lite's
lite/api/python/__init__.py. The wheel's name gives its tags and version
(paddlelite-2.13rc0-cp311-cp311-linux_aarch64.whl): `pip install` of it, or unpacking it into
site-packages, gives `import paddlelite.lite` and importlib.metadata.version("paddlelite"). The
zip is deterministic (fixed times and order): the same inputs give the same bytes.
"""
import base64
import hashlib
import os
import sys
import zipfile

# 1980-01-01, zip's earliest time: no build time leaks into the wheel's bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def wheel_tags(wheel_name):
    """(distribution, version, tag) from a wheel's file name, e.g.
    ("paddlelite", "2.13rc0", "cp311-cp311-linux_aarch64")."""
    stem = wheel_name.rsplit("/", 1)[-1]
    if not stem.endswith(".whl") or stem.count("-") != 4:
        raise ValueError(f"not a wheel name NAME-VERSION-PY-ABI-PLATFORM.whl: {wheel_name}")
    dist, version, py, abi, platform = stem[:-len(".whl")].split("-")
    return dist, version, f"{py}-{abi}-{platform}"


def record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_files(lite_so, init_py, dist, version, tag):
    """The wheel's members in order, as (path, bytes, executable), RECORD last."""
    info = f"{dist}-{version}.dist-info"
    files = [
        ("paddlelite/__init__.py", init_py, False),
        ("paddlelite/lite.so", lite_so, True),
        (f"{info}/METADATA", (f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
                              "Summary: Paddle-Lite Library\n").encode(), False),
        (f"{info}/WHEEL", ("Wheel-Version: 1.0\nGenerator: edgeapp tools/arm/lite_wheel.py\n"
                           f"Root-Is-Purelib: false\nTag: {tag}\n").encode(), False),
        (f"{info}/top_level.txt", b"paddlelite\n", False),
    ]
    record = "".join(record_line(p, d) + "\n" for p, d, _ in files) + f"{info}/RECORD,,\n"
    return files + [(f"{info}/RECORD", record.encode(), False)]


def write_wheel(out, files):
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data, executable in files:
            member = zipfile.ZipInfo(path, ZIP_TIME)
            member.external_attr = (0o100755 if executable else 0o100644) << 16
            member.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(member, data)


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    lite_so, init_py, out = argv
    dist, version, tag = wheel_tags(out)
    with open(lite_so, "rb") as f:
        so = f.read()
    with open(init_py, "rb") as f:
        init = f.read()
    tmp = out + ".part"
    write_wheel(tmp, wheel_files(so, init, dist, version, tag))
    # renamed into place: an interrupted run never leaves a wheel that looks whole
    os.replace(tmp, out)
    print(f"wheel: {out} ({len(so) / 1e6:.1f} MB lite.so)")


if __name__ == "__main__":
    main(sys.argv[1:])
