"""The service benchmark (python -m tools.bench) in a tiny configuration: the fast model,
concurrency 1 and 2, 1 s per case, our Python client only (no wrk needed). Checks that the report
has every row and that the numbers are sane, not that they are fast: this machine is shared and
noisy."""
import argparse
import json
import os
import subprocess
import sys

import pytest

from support import REPO, server_env
from tools.bench import bodies, paired, raw, report, servers, timing


@pytest.mark.tool_runs  # about 30 s: make test-tool-runs
def test_tiny_run_reports_every_case(tmp_path, fast_model_dir):
    out, results = tmp_path / "BENCHMARKS.md", tmp_path / "results.json"
    out.write_text("# Benchmarks\n\nWritten by hand, must survive.\n")
    cmd = [sys.executable, "-m", "tools.bench", "--model-dir", str(fast_model_dir), "--mid", "2",
           "--concurrency", "1,2", "--seconds", "1", "--client", "py", "--overload-clients", "8",
           "--overload-mb", "0.5", "--overload-rounds", "1",
           "--pairs", "1", "--out", str(out), "--json", str(results)]
    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) >= 2  # the worker on a CPU of its own, and the overload's clients with it
    if pinned:
        cmd += ["--env", "WORKER_CPUS=%d" % cpus[-1]]
    r = subprocess.run(cmd, env=server_env(fast_model_dir), cwd=str(REPO), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr

    summary = json.loads(results.read_text())["summary"]
    raw = summary["raw"]["2"]
    assert raw["runs"] > 0 and raw["runs_per_s"] > 0 and raw["input_shape"] == [1, 3, 48, 192]
    # concurrency 1's floor: whole requests through edgeapp's code in the raw process, no HTTP
    req = raw["requests"]
    assert req["p50_ms"] > 0 and set(req["phases_ms"]) == {"decode", "preprocess", "inference", "postprocess"}, req
    assert all(ms > 0 for ms in req["phases_ms"].values()), req
    assert summary["servers"]["edgeapp"]["health_c1_p50_ms"] is None  # wrk's figure; this run has no wrk

    cases = {(c["server"], c["endpoint"], c["concurrency"]): c for c in summary["cases"]}
    expected = {("edgeapp", e, c) for e in ("binary", "base64", "multipart") for c in (1, 2)}
    expected |= {("naive", "binary", 1), ("naive", "binary", 2)}
    assert set(cases) == expected
    for key, c in cases.items():
        assert c["client"] == "py", key
        assert c["ok"] > 0 and c["rps"] > 0 and c["ratio"] > 0, key
        assert c["errors"] == 0 and c["busy"] == 0, (key, c)  # 2 clients never fill the 4 slots
        assert 0 < c["p50_ms"] <= c["p95_ms"] <= c["p99_ms"], (key, c)
        assert c["peak_mb"] > 0, key
        if c["concurrency"] == 2:  # the highest concurrency: /api/health was polled meanwhile
            assert c["health"]["n"] > 0 and c["health"]["failures"] == 0, (key, c["health"])
        else:
            assert c["health"] is None
    for kind in ("edgeapp", "naive"):
        s = summary["servers"][kind]
        assert s["startup_s"] > 0 and s["idle_mb"] > 0 and s["peak_mb"] >= s["idle_mb"] * 0.9, (kind, s)

    pair = summary["pairs"]["2"]  # one round: raw loop, edgeapp saturated, raw loop, back to back
    assert len(pair["ratios"]) == 1 and pair["ratio"] == pair["ratios"][0] > 0, pair
    (one,) = json.loads(results.read_text())["runs"][0]["pairs"]["2"]
    before, after = one["raw_before_after"]  # the reference: the mean of the raw loops either side
    assert before > 0 and after > 0 and one["raw_rps"] == pytest.approx((before + after) / 2) == pair["raw_rps"]
    assert pair["raw_rps"] > 0 and pair["rps"] > 0 and pair["concurrency"] >= 1
    assert pair["utilisation"] is None or 0 < pair["utilisation"] < 1.5, pair
    assert pair["health"]["n"] > 0 and pair["health"]["p99_ms"] > 0, pair  # /api/health polled meanwhile
    assert pair["rate"] == "whole window"  # a fast model: answers counted over the whole window

    over = summary["overload"]
    assert over["clients"] == 8 and over["body_mb"] >= 0.5 and over["mid"] == 2
    assert over["client_cpus"] == (str(cpus[-1]) if pinned else "")
    assert over["fit_clients"] == 6 and over["burst_fit"]["ok"] == 6, over  # a burst it can finish: all served
    for name in ("burst_fit", "burst", "sustained") + (("burst_shared",) if pinned else ()):
        x = over[name]
        assert x["ok"] + x["busy"] > 0 and x["errors"] == 0, over  # 200 or 503, nothing else
        assert x["peak_mb"] > 0, over
        if x["busy"] and sys.platform.startswith("linux"):
            # the kernel's receive stamp on each 503: in the socket before the client read it
            assert x["arrived_within_50ms"] >= x["busy_within_50ms"], x
            assert 0 < x["arrived_p50_ms"] <= x["busy_p50_ms"] and x["arrived_max_ms"] <= x["busy_max_ms"], x
    assert over["burst"]["ok"] + over["burst"]["busy"] == 8, over  # one round: each client once, all answered
    assert "burst_shared" not in over if not pinned else over["burst_shared"]["ok"] + over["burst_shared"]["busy"] == 8
    assert over["queue_budget_mb"] > 0

    text = out.read_text()
    assert text.startswith("# Benchmarks\n\nWritten by hand, must survive.\n")
    for row in ("| edgeapp | 2 | binary | py | 1 |", "| edgeapp | 2 | base64 | py | 2 |",
                "| edgeapp | 2 | multipart | py | 1 |", "| naive | 2 | binary | py | 2 |",
                "| 2 | text-direction | 1×3×48×192 |", "| edgeapp | ", "| naive | ", "Overload: 8 clients", "| burst | ",
                "| burst the board can finish | 6 | 0 |", "| sustained | ",
                "Paired rounds", "| 2 | 1 | "):
        assert row in text, row
    assert "Command: `" in text and "--seconds 1" in text
    assert "Concurrency 1, mid 2: the raw run's p50 is " in text and "with neither HTTP nor the worker" in text
    assert "the same at the clients' sockets |" in text and "SO_TIMESTAMPNS" in text
    if pinned:
        assert "| burst, the clients on any CPU | " in text and "run on the worker's CPUs (%d)" % cpus[-1] in text
    assert "| edgeapp | 2 | multipart | py | 2 |" in r.stdout  # the same report went to stdout


def test_write_section_replaces_only_its_own_section(tmp_path):
    path = str(tmp_path / "B.md")
    report.write_section(path, "service", "Service", "first\n")
    with open(path, "a") as f:
        f.write("\n## Notes by hand\n\nkeep me\n")
    report.write_section(path, "service", "Service", "second\n")
    report.write_section(path, "other", "Other", "third\n")
    text = open(path).read()
    assert "first" not in text and text.count("second") == 1 and "keep me" in text and "third" in text
    assert text.index("second") < text.index("keep me") < text.index("third")


def test_steady_rate_counts_answers_between_the_first_and_the_last():
    # Four answers 0.5 s apart: 2 a second, however long the window around them was.
    assert timing.steady_rate([2.0, 0.5, 1.5, 1.0]) == pytest.approx(2.0)
    assert timing.steady_rate([1.0, 1.0]) is None and timing.steady_rate([]) is None


def test_load_clients_pay_their_first_lookup_before_the_clock():
    # A process's first getaddrinfo imports the idna codec (milliseconds, holding the GIL); the
    # load clients do it before timing anything, or the first burst measures the client.
    code = ("import sys; from tools.bench import clients as b; "
            "before = 'encodings.idna' in sys.modules; b.warm_up_resolver('127.0.0.1', 9); "
            "print(before, 'encodings.idna' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), stdout=subprocess.PIPE, universal_newlines=True,
                         timeout=60)
    assert out.stdout.split() == ["False", "True"], out.stdout


def test_raw_server_times_runs_when_asked_without_loading_again(tmp_path, fast_model_dir):
    # A slow model's paired rounds: one raw process, loaded once, timing a few runs at a time.
    image = str(tmp_path / "page.jpg")
    bodies.default_image(image)
    server = raw.RawServer(str(fast_model_dir), 2, image)
    try:
        assert server.info["input_shape"] == [1, 3, 48, 192] and server.info["load_s"] > 0
        first, second = server.runs(3), server.runs(5)
        assert (first["runs"], second["runs"]) == (3, 5)
        assert second["runs_per_s"] > 0 and second["ms_per_run"] == pytest.approx(1000.0 / second["runs_per_s"])
        assert second["load_s"] == server.info["load_s"]  # the same process: loaded once
    finally:
        server.close()
    assert server.proc.returncode == 0  # stdin closed: it ends by itself

    with pytest.raises(SystemExit, match="no model 99"):
        raw.RawServer(str(fast_model_dir), 99, image)


def test_steady_busy_is_the_accelerator_share_between_the_first_and_the_last_answer():
    header = "queue;dur=0.40, decode;dur=0.55, inference;dur=450.00, postprocess;dur=3.10"
    assert timing.timing_ms(header, "inference") == 450.0 and timing.timing_ms(header, "render") is None
    # Answers 0.5 s apart, 450 ms of inference each: the accelerator busy 90% of the time between.
    answers = [(1.0 + 0.5 * k, timing.timing_ms(header, "inference")) for k in range(5)]
    assert timing.steady_busy(answers[::-1]) == pytest.approx(0.9)
    assert timing.steady_busy(answers[:2]) is None and timing.steady_busy([]) is None


def test_raw_against_raw_rounds_a_loaded_raw_process_between_fresh_ones(tmp_path, fast_model_dir):
    image = str(tmp_path / "page.jpg")
    bodies.default_image(image)
    args = argparse.Namespace(model_dir=str(fast_model_dir), image_path=image, settings={}, pairs=2,
                              min_requests=5, max_requests=1000)
    ratios = paired.raw_against_raw(args, 2, 0.2, 2.0, 1)
    assert len(ratios) == 2 and all(0.2 < x < 5 for x in ratios), ratios  # the same loop: near 1, host allowing


# ---- the second engine: ONNX Runtime, its FastAPI peer, the per-engine table ----------------------

@pytest.fixture(scope="session")
def peer_lib():
    """FastAPI and uvicorn for the peer, as `make peer-lib` installs them (PEER_LIB, else build/peer-lib);
    installed here from tools/peer/requirements.txt (hash-checked) when missing or older than it."""
    lib = os.environ.get("PEER_LIB") or servers.PEER_LIB
    stamp, reqs = os.path.join(lib, ".installed"), os.path.join(str(REPO), "tools", "peer", "requirements.txt")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(reqs):
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--require-hashes", "--no-deps",
                        "--only-binary", ":all:", "--target", lib, "-r", reqs], check=True, timeout=600)
        open(stamp, "w").close()
    return lib


def test_raw_loop_runs_the_servers_engine_and_threads():
    cmd, env = raw.raw_command("/m", 2, "/i.jpg", {"EDGEAPP_ENGINE": "onnxruntime", "EDGEAPP_ORT_THREADS": "3",
                                                   "EDGEAPP_WORKER_CPUS": "1"})
    flags = dict(zip(cmd[4::2], cmd[5::2]))
    assert flags["--engine"] == "onnxruntime" and flags["--ort-threads"] == "3" and flags["--cpus"] == "1", cmd
    cmd, _ = raw.raw_command("/m", 2, "/i.jpg", {})
    assert dict(zip(cmd[4::2], cmd[5::2]))["--engine"] == "paddlelite"


def test_peer_answers_as_edgeapp_does(tmp_path, fast_model_dir, peer_lib):
    # The same image through the peer (FastAPI + onnxruntime in its handler) and through edgeapp's
    # own code on ONNX Runtime: the same result, so the benchmark compares the same work.
    from edgeapp import engines
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles
    from edgeapp.engine import Engine

    sample = fast_model_dir / "text-direction" / "sample.png"
    bundles = load_bundles(str(fast_model_dir))
    local = Engine(bundles, LocalAccelerator(bundles, engines.Settings(engines.ONNXRUNTIME, ort_threads=1)))
    expected = local.infer(2, cv2_read(sample))["result"]

    peer = servers.start_server("peer", str(fast_model_dir), str(tmp_path), {"EDGEAPP_ORT_THREADS": "1"}, peer_lib)
    try:
        peer.wait_ready(60)
        doc = servers.preflight(peer, "/api/model/service/binary?mid=2", str(sample), "image/png", count=1)
        assert peer.in_flight() == 0 and peer.get_json("/api/health")["data"]["models_ready"] == [2]
    finally:
        peer.stop()
    got = doc["data"]["result"]
    assert [r["label"] for r in got] == [r["label"] for r in expected] == ["180"], (got, expected)
    assert got[0]["score"] == pytest.approx(expected[0]["score"], abs=1e-5)
    assert got[0]["location"] == expected[0]["location"]
    assert "--threads 1 " in " ".join(peer.command(str(fast_model_dir))) + " "


def cv2_read(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)


@pytest.mark.tool_runs
def test_tiny_onnxruntime_run_puts_the_peer_beside_edgeapp(tmp_path, fast_model_dir, peer_lib):
    out, results = tmp_path / "BENCHMARKS.md", tmp_path / "results.json"
    report.write_section(str(out), "service", report.TITLE, "the Paddle Lite section, kept\n")
    cmd = [sys.executable, "-m", "tools.bench", "--model-dir", str(fast_model_dir), "--mid", "2",
           "--concurrency", "2", "--seconds", "0.5", "--min-requests", "5", "--client", "py", "--endpoints", "binary",
           "--overload-clients", "0", "--pairs", "1", "--env", "ENGINE=onnxruntime", "--peer-lib", peer_lib,
           "--out", str(out), "--json", str(results)]
    r = subprocess.run(cmd, env=server_env(fast_model_dir), cwd=str(REPO), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr

    doc = json.loads(results.read_text())
    meta, summary = doc["meta"], doc["summary"]
    assert meta["engine"] == "onnxruntime" and meta["baseline"] == "peer" and meta["engine_version"] == "1.19.2"
    assert meta["peer"]["fastapi"] != "?" and meta["peer"]["uvicorn"] != "?", meta["peer"]
    assert "EDGEAPP_ORT_THREADS=" in meta["settings"]  # resolved once: raw loop, worker and peer alike
    assert {(c["server"], c["concurrency"]) for c in summary["cases"]} == {("edgeapp", 2), ("peer", 2)}
    peer_case = [c for c in summary["cases"] if c["server"] == "peer"][0]
    assert peer_case["ok"] > 0 and peer_case["errors"] == 0 and peer_case["health"]["n"] > 0, peer_case
    cpu = summary["pairs"]["2"]["cpu_ms_per_answer"]
    assert cpu["http"] > 0 and cpu["worker"] > 0, cpu  # who spent the CPU: the HTTP process and the worker

    text = out.read_text()
    assert "the Paddle Lite section, kept" in text  # a section per engine: the other one stays
    assert "## Service throughput and latency on ONNX Runtime (tools/bench)" in text
    assert "<!-- bench.py service-onnxruntime: begin" in text
    assert "ONNX Runtime (onnxruntime 1.19.2)" in text and "| peer | 2 | binary | py | 2 |" in text
    assert "- mid 2: edgeapp saturated " in text and "wanted ≥ 0.80×" in text and "Beside the peer in the same cases" in text


def test_cpu_per_answer_splits_the_http_process_from_its_worker():
    before, after = {10: 1.0, 11: 2.0}, {10: 1.5, 11: 3.0, 12: 0.25}  # 12: a worker started meanwhile
    assert paired.cpu_per_answer(10, before, after, 250) == {"http": 2.0, "worker": 5.0}
    assert paired.cpu_per_answer(10, before, after, 0) == {"http": None, "worker": None}


@pytest.mark.tool_runs
def test_engines_table_has_a_row_per_model_and_engine(tmp_path, fast_model_dir):
    out = tmp_path / "BENCHMARKS.md"
    cmd = [sys.executable, "-m", "tools.bench", "engines", "--model-dir", str(fast_model_dir), "--seconds", "0.3",
           "--min-requests", "5", "--out", str(out)]
    r = subprocess.run(cmd, env=server_env(fast_model_dir), cwd=str(REPO), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    text = out.read_text()
    rows = [line.strip("| ").split(" | ") for line in text.splitlines()
            if line.startswith("| 2 | text-direction | 1×3×48×192 |")]
    assert [cells[3] for cells in rows] == ["ONNX Runtime", "Paddle Lite"], rows
    for cells in rows:
        row = cells
        assert float(cells[4]) > 0 and float(cells[5]) > 0 and cells[6].endswith("×"), row  # raw ms, req/s, ratio
        assert float(cells[7]) > 0 and float(cells[10]) > 0, row  # health p99, raw process RSS
    assert "worker RSS" in text and "onnxruntime 1.19.2" in text and "paddlelite 2.13rc0" in text
