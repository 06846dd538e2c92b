"""wrk (Debian package `wrk`), the C load client, driven by tools/bench_post.lua: the binary
endpoint's load when it is installed, and the bodiless GET of concurrency 1's floor."""
import json
import math
import os
import subprocess

from tools.launch import REPO

LUA = os.path.join(str(REPO), "tools", "bench_post.lua")


def run_wrk(wrk, url, body_file, content_type, concurrency, seconds, max_requests, timeout, method="POST"):
    """wrk POSTing body_file to url (method "GET": GETting url, body_file and content_type unused)."""
    secs = max(1, int(math.ceil(seconds)))  # wrk takes whole seconds
    cmd = [wrk, "-t", "1", "-c", str(concurrency), "-d", "%ds" % secs, "--timeout", "%ds" % int(math.ceil(timeout)),
           "-s", LUA, url, "--", body_file, content_type, str(max_requests), method]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                         timeout=secs + timeout + 60)
    line = [x for x in out.stdout.splitlines() if x.startswith("BENCH-JSON ")]
    if out.returncode != 0 or not line:
        raise RuntimeError("wrk failed (exit %s):\n%s%s" % (out.returncode, out.stdout, out.stderr))
    w = json.loads(line[-1][len("BENCH-JSON "):])
    elapsed = w["duration_us"] / 1e6
    socket_errors = w["connect"] + w["read"] + w["write"] + w["timeout"]
    kinds = {k: w[k] for k in ("connect", "read", "write", "timeout") if w[k]}
    if w["other_status"]:
        kinds["other status"] = w["other_status"]
    return {
        "client": "wrk", "seconds": elapsed, "ok": w["ok"], "busy": w["busy"],
        "errors": w["other_status"] + socket_errors, "error_kinds": kinds,
        "rps": w["ok"] / elapsed if elapsed > 0 else 0.0,
        "p50_ms": w["p50_us"] / 1000.0, "p95_ms": w["p95_us"] / 1000.0, "p99_ms": w["p99_us"] / 1000.0,
        "latency_of": "all answers",
    }


def wrk_version(wrk):
    try:
        out = subprocess.run([wrk, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=10).stdout
        return out.splitlines()[0].split(" [")[0] if out else "wrk"
    except (OSError, subprocess.SubprocessError):
        return "wrk"
