"""tools/launch.py: the one way the tests, the benchmark and the soak start edgeapp."""
import subprocess
import sys

import pytest

import support
from tools import launch, soak
from tools.bench import servers


def test_tests_benchmark_and_soak_share_one_launcher():
    assert support.Server is launch.Server and support.free_port is launch.free_port
    assert support.server_env is launch.server_env and support.REPO == launch.REPO
    assert soak.Server is launch.Server
    assert issubclass(servers.EdgeappServer, launch.Server) and issubclass(servers.NaiveServer, launch.Server)
    assert servers.EdgeappServer.command is launch.Server.command  # edgeapp, as a user starts it


def test_child_env_leaves_out_the_callers_edgeapp_settings(monkeypatch):
    monkeypatch.setenv("EDGEAPP_TOKEN", "the developer's own")
    monkeypatch.setenv("EDGEAPP_THREADS", "99")
    assert not [k for k in launch.child_env() if k.startswith("EDGEAPP_")]
    env = launch.server_env("/models", token="x", queue_depth=2)
    assert {k: v for k, v in env.items() if k.startswith("EDGEAPP_")} == {
        "EDGEAPP_MODEL_DIR": "/models", "EDGEAPP_TOKEN": "x", "EDGEAPP_QUEUE_DEPTH": "2"}
    assert launch.child_env({"OMP_NUM_THREADS": "1"})["OMP_NUM_THREADS"] == "1"


def test_server_is_python_m_edgeapp_serve_on_a_free_port(tmp_path, fast_model_dir):
    server = launch.Server(tmp_path, fast_model_dir)
    try:
        assert server.proc.args[:4] == [sys.executable, "-m", "edgeapp", "serve"]
        assert server.proc.args[-4:] == ["--host", "127.0.0.1", "--port", str(server.port)]
        assert server.wait_ready() is server and server.startup_s > 0 and server.health() == 200
        assert server.log_path == tmp_path / ("server-%d.log" % server.port)
    finally:
        assert server.stop() == 0  # SIGTERM: a clean exit
    assert server.health() is None


def test_a_server_that_exits_before_it_is_ready_says_why(tmp_path, fast_model_dir):
    server = launch.Server(tmp_path, fast_model_dir, args=("--no-such-option",))
    with pytest.raises(RuntimeError, match="(?s)server exited with 2 before it was ready:.*"
                                           "unrecognized arguments: --no-such-option"):
        server.wait_ready(30)


@pytest.mark.parametrize("argv", [["-m", "tools.bench", "--help"], ["-m", "tools.soak", "--help"],
                                  ["tools/build_models.py", "--help"], ["tools/bundle.py", "--help"],
                                  ["tools/naive_server.py", "--help"]])
def test_tools_run_from_the_repository_root(argv):
    # tools/ is a package for `python -m tools.bench` and `python -m tools.soak`; the others stay scripts.
    out = subprocess.run([sys.executable] + argv, env=launch.child_env(), cwd=str(launch.REPO),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert out.returncode == 0 and "usage:" in out.stdout, out.stdout + out.stderr
