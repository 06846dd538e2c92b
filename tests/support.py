"""Helpers for tests that start edgeapp in a child process: a free port, its environment, a server.
They are the launcher the tools share (tools/launch.py): the tests start the service as the
benchmark and the soak do."""
from tools.launch import MODEL_DIR, REPO, START_TIMEOUT, TEST_ENGINE, Server, free_port, server_env  # noqa: F401

# The engine of the tests' worker processes: the one `make test-arm` names, else the service's default.
WORKER_ENGINE = TEST_ENGINE or "paddlelite"


def engine_settings():
    """engines.Settings for the tests' in-process accelerators: on WORKER_ENGINE."""
    from edgeapp import engines
    return engines.Settings(WORKER_ENGINE)


def build_zoo_bundle(zoo_dir, name):
    """An optional bundle (`make zoo`) built into zoo_dir for the tests when it is not there yet."""
    import subprocess
    import sys
    from pathlib import Path

    if not (Path(zoo_dir) / name / "model.nb").is_file():
        res = subprocess.run([sys.executable, str(REPO / "tools" / "build_models.py"), "--target", "x86",
                              "--out", str(zoo_dir), "--only", name],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        assert res.returncode == 0, res.stdout
