"""The image component: `make install` into a staging root, the real init script under the image's
shell (BusyBox ash when installed), respawn after kill -9, the systemd unit, the board profiles."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests

from boardimage import Image, image_shell, make_install, set_config
from support import MODEL_DIR, REPO

from edgeapp import __version__, config


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """host-x86 installed into a staging root, with every bundled model."""
    root = tmp_path_factory.mktemp("rootfs")
    out = make_install(root)
    assert "installed edgeapp %s for host-x86" % __version__ in out
    return root


@pytest.fixture(scope="module")
def image(tree, tmp_path_factory):
    shell, path = image_shell(tmp_path_factory.mktemp("shell"))
    img = Image(tree, shell, path)
    yield img
    img.init("stop")
    img.kill_all()


def test_tree_mirrors_the_target(tree):
    app = tree / "opt" / "edgeapp"
    for rel in ("etc/default/edgeapp", "etc/init.d/S95edgeapp", "usr/lib/systemd/system/edgeapp.service",
                "opt/edgeapp/bin/edgeapp", "opt/edgeapp/lib/python/edgeapp/server.py",
                "opt/edgeapp/lib/python/bottle.py", "opt/edgeapp/lib/python/cheroot/__init__.py", "opt/edgeapp/BUILD"):
        assert (tree / rel).is_file(), rel
    assert os.access(str(tree / "etc/init.d/S95edgeapp"), os.X_OK)
    assert os.access(str(app / "bin/edgeapp"), os.X_OK)
    # On the PATH, and start/stop links for sysvinit runlevels; systemd enablement done in the tree.
    assert os.readlink(str(tree / "usr/bin/edgeapp-diag")) == "../../opt/edgeapp/bin/edgeapp-diag"
    assert os.readlink(str(tree / "etc/rc5.d/S95edgeapp")) == "../init.d/S95edgeapp"
    assert os.readlink(str(tree / "etc/rc0.d/K05edgeapp")) == "../init.d/S95edgeapp"
    wants = tree / "etc/systemd/system/multi-user.target.wants/edgeapp.service"
    assert wants.resolve() == (tree / "usr/lib/systemd/system/edgeapp.service").resolve()
    # Every bundle built for the board's target, with its selftest sample; no build leftovers.
    built = sorted(p.name for p in Path(MODEL_DIR).iterdir() if (p / "bundle.json").is_file())
    assert sorted(p.name for p in (app / "models").iterdir()) == built
    for name in built:
        assert json.loads((app / "models" / name / "bundle.json").read_text())["target"] == "x86"
    assert (app / "models/ppocr-det/sample.png").is_file()
    assert not list(app.rglob("__pycache__")) and not list(app.rglob(".*"))
    # The package is exactly the wheel's files: every module and the page's files, with metadata.
    lib = app / "lib/python"
    for rel in ("edgeapp/ui/index.html", "edgeapp/ui/main.js", "edgeapp/ui/style.css", "edgeapp/models/ocr.py"):
        assert (lib / rel).is_file(), rel
    source = sorted(str(p.relative_to(REPO / "src")) for p in (REPO / "src/edgeapp").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts)
    assert sorted(str(p.relative_to(lib)) for p in (lib / "edgeapp").rglob("*") if p.is_file()) == source
    assert list(lib.glob("edgeapp-%s.dist-info/METADATA" % __version__))


def test_installed_config_is_the_board_profile(tree):
    s = config.load(str(tree / "etc/default/edgeapp"), environ={config.ROOT_ENV: str(tree)})
    assert s.board == "host-x86" and s.memory_budget_mb == 1536 and s.threads == 8 and s.queue_depth == 4
    assert s.model_dir == str(tree / "opt/edgeapp/models")  # a target path, read below the root
    assert s.pidfile == str(tree / "run/edgeapp/edgeapp.pid")
    assert s.log == str(tree / "run/edgeapp/edgeapp.log") and s.console == str(tree / "dev/console")
    assert s.token is None


def test_a_second_install_keeps_an_edited_config(tree, tmp_path):
    root = tmp_path / "again"
    shutil.copytree(str(tree / "etc"), str(root / "etc"), symlinks=True)
    set_config(root, threads=3)
    out = make_install(root, INSTALL_MODEL_DIR=MODEL_DIR)
    assert "kept the existing /etc/default/edgeapp" in out
    assert "EDGEAPP_THREADS=3" in (root / "etc/default/edgeapp").read_text()
    assert "EDGEAPP_THREADS=8" in (root / "etc/default/edgeapp.dist").read_text()


def test_init_script_is_posix_sh(tree, tmp_path):
    script = str(tree / "etc/init.d/S95edgeapp")
    shells = [s for s in (shutil.which("dash"), image_shell(tmp_path)[0]) if s]
    for sh in shells:
        res = subprocess.run([sh, "-n", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=10)
        assert res.returncode == 0, (sh, res.stdout)
    res = subprocess.run([shells[-1], script, "bogus"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=10)
    assert res.returncode == 2 and "usage:" in res.stdout


def test_init_script_start_status_respawn_stop(image):
    """The whole life of the service on a board: start, ready, kill -9, respawn, stop."""
    set_config(image.root, log_max_bytes="4K")  # small, so that the log rotates during the test
    assert image.init("status").returncode == 3
    t0 = time.monotonic()
    res = image.init("start")
    returned = time.monotonic() - t0
    assert res.returncode == 0 and "Starting edgeapp (engine paddlelite)" in res.stdout, res.stdout
    assert returned < 10  # start does not wait for the models
    ready = image.wait_ready() + returned
    print("init script: start returned in %.1f s, ready in %.1f s" % (returned, ready))
    res = image.init("status")
    first = image.pid()
    assert res.returncode == 0 and "running (pid %d" % first in res.stdout
    assert image.init("start").stdout.startswith("edgeapp is already running")

    # The banner: one line on the console with version, board, URL and models.
    n_models = len(requests.get(image.url + "/api/models", timeout=5).json()["data"])
    banner = "edgeapp %s ready on host-x86: %s/ (%d of %d models ready on paddlelite)" % (
        __version__, image.url, n_models, n_models)
    assert (image.root / "dev/console").read_text().splitlines() == [banner]
    assert banner in image.log()
    # The page is installed with the package (it once answered 404: only *.py files were copied).
    page = requests.get(image.url + "/ui/", timeout=5)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert requests.get(image.url + "/ui/main.js", timeout=5).status_code == 200

    supervisor = image.supervisor()
    t0 = time.monotonic()
    os.kill(first, signal.SIGKILL)
    back = image.wait_ready(not_pid=first)
    print("respawn after kill -9: ready again in %.1f s" % back)
    assert image.supervisor() == supervisor and image.pid() != first
    assert "killed by signal 9" in image.log() + _old_log(image)
    assert image.init("status").returncode == 0

    procs = image.processes()
    assert image.pid() in procs and supervisor in procs
    t0 = time.monotonic()
    res = image.init("stop")
    print("stop took %.1f s" % (time.monotonic() - t0))
    assert res.returncode == 0 and "stopped" in res.stdout, res.stdout
    assert image.processes() == []  # service, worker, supervisor and log sink all gone
    assert not (image.run_dir() / "edgeapp.pid").exists() and not (image.run_dir() / "supervise.pid").exists()
    assert image.init("status").returncode == 3
    # The log in RAM stays within its cap (plus one line), one older file kept.
    for name in ("edgeapp.log", "edgeapp.log.1"):
        assert (image.run_dir() / name).stat().st_size <= 4096 + 1024
    assert "supervisor" in image.log() + _old_log(image)


def _old_log(image):
    try:
        return (image.run_dir() / "edgeapp.log.1").read_text(errors="replace")
    except OSError:
        return ""


def test_init_script_refuses_a_bad_config_and_still_stops(image):
    conf = image.root / "etc/default/edgeapp"
    good = conf.read_text()
    try:
        conf.write_text(good + "EDGEAPP_THREADS=many\n")
        res = image.init("start")
        assert res.returncode == 6 and "EDGEAPP_THREADS='many'" in res.stdout and "not a whole number" in res.stdout
        assert image.processes() == []
        assert image.init("stop").returncode == 0
    finally:
        conf.write_text(good)


def test_systemd_unit_passes_systemd_analyze(tree, tmp_path):
    _verify_unit(tree, tmp_path)
    unit = (tree / "usr/lib/systemd/system/edgeapp.service").read_text()
    assert "ExecStart=/opt/edgeapp/bin/edgeapp serve" in unit and "Restart=always" in unit
    assert "MemoryMax=2048M" in unit and "\nMemoryLimit=" not in unit
    assert "After=network-online.target" in unit


def _verify_unit(tree, tmp_path):
    """systemd-analyze verify with the tree as the root (its units beside the host's)."""
    tool = shutil.which("systemd-analyze")
    if not tool or not Path("/usr/lib/systemd/system").is_dir():
        pytest.skip("systemd-analyze is not installed (Debian package systemd): cannot verify the unit")
    root = tmp_path / "verify-root"
    shutil.copytree("/usr/lib/systemd/system", str(root / "usr/lib/systemd/system"), symlinks=True)
    for rel in ("usr/lib/systemd/system/edgeapp.service", "opt/edgeapp/bin/edgeapp"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(str(tree / rel), str(root / rel))
    res = subprocess.run([tool, "verify", "--man=no", "--root=%s" % root, str(root / "usr/lib/systemd/system/edgeapp.service")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    print(res.stdout)
    assert res.returncode == 0, res.stdout
    # Deprecation notes aside (MemoryLimit= on cgroup v1 boards), systemd has nothing to say.
    assert [l for l in res.stdout.splitlines() if l.strip() and "MemoryLimit=" not in l] == [], res.stdout
    return res.stdout


@pytest.fixture(scope="module")
def arm_models(tmp_path_factory):
    """One bundle converted for arm by the real tool: enough to lay out a board's tree."""
    src = tmp_path_factory.mktemp("arm-src")
    shutil.copy2(str(REPO / "models/sources.json"), str(src / "sources.json"))
    shutil.copytree(str(REPO / "models/text-direction"), str(src / "text-direction"))
    out = tmp_path_factory.mktemp("arm-models")
    res = subprocess.run([sys.executable, str(REPO / "tools/build_models.py"), "--target", "arm",
                          "--models-src", str(src), "--out", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert res.returncode == 0, res.stdout
    return out


def test_edgeboard_fz_tree(arm_models, tmp_path):
    root = tmp_path / "fz"
    make_install(root, "edgeboard-fz", INSTALL_MODEL_DIR=arm_models)
    assert (root / "etc/init.d/S95edgeapp").is_file() and (root / "etc/rc5.d/S95edgeapp").is_symlink()
    assert not (root / "usr/lib/systemd").exists()
    bundle = json.loads((root / "opt/edgeapp/models/text-direction/bundle.json").read_text())
    assert bundle["target"] == "arm" and (root / "opt/edgeapp/models/text-direction/sample.png").is_file()
    assert 'exec "${EDGEAPP_PYTHON:-/usr/bin/python3}"' in (root / "opt/edgeapp/bin/edgeapp").read_text()
    s = config.load(str(root / "etc/default/edgeapp"), environ={})
    assert (s.board, s.lite_threads, s.log, s.model_dir, s.engine) == (
        "edgeboard-fz", 2, "/run/edgeapp/edgeapp.log", "/opt/edgeapp/models", "paddlelite")
    assert "Paddle Lite target arm" in (root / "opt/edgeapp/BUILD").read_text()
    # The pure-Python libraries are the ones for the board's Python 3.8.
    assert (root / "opt/edgeapp/lib/python/more_itertools-10.5.0.dist-info").is_dir()


def test_edgeboard_dk1a_tree_and_unit(arm_models, tmp_path):
    root = tmp_path / "dk1a"
    make_install(root, "dk1a", INSTALL_MODEL_DIR=arm_models)  # the short name of edgeboard-dk1a
    assert not (root / "etc/init.d").exists()
    unit = (root / "usr/lib/systemd/system/edgeapp.service").read_text()
    assert "\nMemoryMax=1024M" in unit and "\nMemoryLimit=1024M" in unit  # cgroup v1 on Ubuntu 20.04
    assert "\nDescription=edgeapp HTTP model-inference service (engine onnxruntime)\n" in unit
    s = config.load(str(root / "etc/default/edgeapp"), environ={})
    assert (s.board, s.log, s.engine, s.ort_threads) == ("edgeboard-dk1a", "journal", "onnxruntime", 2)
    assert "engine: onnxruntime" in (root / "opt/edgeapp/BUILD").read_text()
    _verify_unit(root, tmp_path)


def test_overlay_tarball(arm_models):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEAPP_", "MAKE"))}
    res = subprocess.run(["make", "--no-print-directory", "overlay", "BOARD=edgeboard-fz",
                          "INSTALL_MODEL_DIR=%s" % arm_models], cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert res.returncode == 0, res.stdout
    path = REPO / "build" / ("edgeapp-%s-edgeboard-fz.tar.gz" % __version__)
    with tarfile.open(str(path)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "etc/init.d/S95edgeapp" in members and "opt/edgeapp/bin/edgeapp" in members
    assert "usr/bin/edgeapp-diag" in members and members["usr/bin/edgeapp-diag"].issym()
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert not any(n in (".", "./") for n in members)  # unpacking must not touch the root's own mode
    assert members["etc/init.d/S95edgeapp"].mode & 0o777 == 0o755
