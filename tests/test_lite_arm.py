"""Paddle Lite for ARM, the parts that need no 50-minute build: tools/arm/paddle_lite.sh refuses a
source tree that is not Paddle Lite v2.13-rc with its submodules (saying how to get one), the
wheel packer writes a wheel that pip's metadata readers accept, and lite_compare judges outputs
and writes its table."""
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools" / "arm"))
import lite_compare  # noqa: E402
import lite_wheel  # noqa: E402

SCRIPT = REPO / "tools" / "arm" / "paddle_lite.sh"
GET_TREE = "git clone --recursive -b v2.13-rc https://github.com/PaddlePaddle/Paddle-Lite"
SUBMODULE_FILES = ["gflags/CMakeLists.txt", "glog/CMakeLists.txt", "googletest/CMakeLists.txt",
                   "protobuf-host/cmake/CMakeLists.txt", "protobuf-mobile/cmake/CMakeLists.txt",
                   "pybind/include/pybind11/pybind11.h"]


def build(src, tmp_path):
    return subprocess.run(["sh", str(SCRIPT), str(src), str(tmp_path / "out"), str(tmp_path / "root")],
                          capture_output=True, text=True, timeout=60)


def lite_tree(path, submodules=True):
    """The files of a Paddle-Lite tree the script looks for (empty: nothing is compiled here)."""
    for f in ["lite/api/python/pybind/pybind.cc", "cmake/os/armlinux.cmake"] + (
            ["third-party/" + f for f in SUBMODULE_FILES] if submodules else []):
        (path / f).parent.mkdir(parents=True, exist_ok=True)
        (path / f).write_text("")
    return path


def test_the_build_refuses_a_folder_that_is_not_paddle_lite(tmp_path):
    p = build(tmp_path, tmp_path)
    assert p.returncode == 1
    assert "is not a Paddle-Lite source tree" in p.stderr and GET_TREE in p.stderr
    assert not (tmp_path / "out").exists()


def test_the_build_refuses_a_tree_without_its_submodules(tmp_path):
    p = build(lite_tree(tmp_path / "Paddle-Lite", submodules=False), tmp_path)
    assert p.returncode == 1
    assert "third-party/gflags/CMakeLists.txt is missing: the submodules are not checked out" in p.stderr
    assert GET_TREE in p.stderr


def test_the_build_refuses_a_checkout_of_another_commit(tmp_path):
    src = lite_tree(tmp_path / "Paddle-Lite")
    git = ["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "not v2.13-rc"], check=True)
    p = build(src, tmp_path)
    assert p.returncode == 1
    assert "expected v2.13-rc = 102697b54f58bbc775f82945c14cf7f16027ddd4" in p.stderr


def test_the_build_refuses_a_root_without_python_headers(tmp_path):
    p = build(lite_tree(tmp_path / "Paddle-Lite"), tmp_path)
    assert p.returncode == 1
    assert "usr/include/python3.11/Python.h is missing" in p.stderr and "libpython3.11-dev" in p.stderr


def test_make_says_how_to_get_the_source_tree():
    p = subprocess.run(["make", "--no-print-directory", "paddle-lite-arm", "PADDLE_LITE_SRC="], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and GET_TREE in p.stderr and "PADDLE_LITE_SRC" in p.stderr


def test_the_wheel_installs_as_paddlelite(tmp_path):
    so, init = tmp_path / "lite.so", tmp_path / "__init__.py"
    so.write_bytes(b"\x7fELF not really")
    init.write_text("import os\n")
    whl = tmp_path / "paddlelite-2.13rc0-cp311-cp311-linux_aarch64.whl"
    subprocess.run([sys.executable, str(REPO / "tools" / "arm" / "lite_wheel.py"), str(so), str(init), str(whl)],
                   check=True, capture_output=True, timeout=60)
    z = zipfile.ZipFile(whl)
    info = "paddlelite-2.13rc0.dist-info/"
    assert z.namelist() == ["paddlelite/__init__.py", "paddlelite/lite.so", info + "METADATA", info + "WHEEL",
                            info + "top_level.txt", info + "RECORD"]
    assert z.read("paddlelite/lite.so") == so.read_bytes()
    assert z.getinfo("paddlelite/lite.so").external_attr >> 16 == 0o100755
    assert "Tag: cp311-cp311-linux_aarch64\n" in z.read(info + "WHEEL").decode()
    site = tmp_path / "site"
    z.extractall(site)
    dist = next(importlib.metadata.distributions(path=[str(site)]))
    assert (dist.metadata["Name"], dist.version) == ("paddlelite", "2.13rc0")
    for f in dist.files:  # RECORD's hashes and sizes are those of the unpacked files
        if f.hash:
            data = (site / f).read_bytes()
            assert lite_wheel.record_line(str(f), data) == "%s,sha256=%s,%d" % (f, f.hash.value, f.size)
    whl2 = tmp_path / "again" / whl.name
    whl2.parent.mkdir()
    subprocess.run([sys.executable, str(REPO / "tools" / "arm" / "lite_wheel.py"), str(so), str(init), str(whl2)],
                   check=True, capture_output=True, timeout=60)
    assert whl2.read_bytes() == whl.read_bytes()  # deterministic


def test_wheel_names_give_tags():
    assert lite_wheel.wheel_tags("x/paddlelite-2.13rc0-cp311-cp311-linux_aarch64.whl") == (
        "paddlelite", "2.13rc0", "cp311-cp311-linux_aarch64")
    with pytest.raises(ValueError):
        lite_wheel.wheel_tags("paddlelite-2.13rc0.whl")


def test_outputs_are_judged_against_the_x86_range_and_tolerance():
    x86 = [np.array([[0.0, 10.0, -10.0]], np.float32), np.array([0.5, 0.25], np.float32)]
    arm = [x86[0] + np.array([[0.0, 0.005, 0.0]], np.float32), np.array([0.5, 0.2], np.float32)]
    rows = lite_compare.compare_outputs(x86, arm, 1e-3)
    assert rows[0]["max_abs_diff"] == pytest.approx(0.005, abs=1e-6) and rows[0]["range"] == 20.0
    assert rows[0]["relative"] == pytest.approx(0.005 / 20, rel=1e-3)
    assert rows[0]["ok"]  # 0.005 <= 1e-3 x |x86| max (10)
    assert not rows[1]["ok"]  # 0.05 > 1e-3 x max(1, 0.5)
    nan = lite_compare.compare_outputs([x86[1]], [np.array([0.5, np.nan], np.float32)], 1e-3)
    assert not nan[0]["ok"]
    missing = lite_compare.compare_outputs(x86, arm[:1], 1e-3)
    assert missing[1] == {"output": 1, "x86_shape": [2], "arm_shape": None, "ok": False}


def test_the_table_has_a_row_per_output_and_per_model():
    side = {"outputs": ["boxes", "scores"], "load_s": 1.5, "run_s": 0.25, "rss_imports_kb": 102400,
            "rss_loaded_kb": 112640, "rss_run_kb": 122880, "hwm_kb": 125952}
    record = {"model": "face", "id": 4, "input_shape": [1, 3, 128, 128], "input": "astronaut.png",
              "x86": side, "arm": side,
              "outputs": [{"output": 0, "x86_shape": [1, 896, 16], "max_abs_diff": 2e-5, "range": 250.0,
                           "relative": 8e-8, "ok": True},
                          {"output": 1, "x86_shape": [1, 896, 1], "max_abs_diff": 0.5, "range": 100.0,
                           "relative": 5e-3, "ok": False}]}
    failed = {"model": "objects", "id": 8, "input_shape": [1, 3, 416, 416], "input": "astronaut.png",
              "x86": side, "arm": {"error": "exit -6: Check failed"}}
    text = lite_compare.table([record, failed])
    assert "| face (4) | 0 boxes | 1x896x16 | 2e-05 | 250 | 8e-08 |" in text
    assert "| face (4) | 1 scores | 1x896x1 | 0.5 (over tolerance) | 100 | 0.005 |" in text
    assert "| objects (8) | ARM failed: exit -6: Check failed |" in text
    assert "| face (4) | 1x3x128x128 astronaut.png | 250.0 | 1.5 | 0.25 | 100.0 / +20.0 / 123.0 | 100.0 / +20.0 / 123.0 |" in text
    assert "| objects (8) | 1x3x416x416 astronaut.png | 250.0 | - | - | 100.0 / +20.0 / 123.0 | - |" in text
