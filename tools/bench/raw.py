"""The raw Paddle Lite loop, the limit: the model's model.nb in a fresh process
(`python -m tools.bench raw ...`, edgeapp.engines' Predictor), the tensor prepared once,
predictor.run back to back, with the server's Paddle Lite threads and worker CPUs.

    python -m tools.bench raw --model-dir D --mid N --image F --seconds S --max-runs N [--requests]
    python -m tools.bench raw --model-dir D --mid N --image F --serve   # then "N" lines on stdin: time N runs
"""
import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time

from tools.bench.common import MODE_CWD, hard_cap, mb, mode_command, percentile, timed_loop
from tools.bench.floor import time_requests
from tools.bench.watch import rss_of
from tools.launch import child_env


def model_tensor(model_dir, mid, image_path, filled=False):
    """(bundle, model tensor) for the image, preprocessed by the model's own edgeapp class; with
    filled, for a model whose requests run other models too (its type has no preprocess of its own:
    the OCR pipeline, face recognition), a tensor of its input shape filled with 0.5."""
    import numpy as np

    from edgeapp import images, models
    from edgeapp.bundle import load_bundles

    bundles = load_bundles(model_dir)
    if mid not in bundles:
        raise SystemExit("no model %d in %s (models: %s)" % (mid, model_dir, sorted(bundles)))
    b = bundles[mid]
    model = models.build(b, bundles)
    if filled and b.runs_model and not hasattr(model, "preprocess"):
        return b, np.full(b.input_shape, 0.5, dtype=np.float32)
    if not b.runs_model or not hasattr(model, "preprocess"):
        raise SystemExit("model %d (%s, type %s) is not one predictor: there is no raw loop to compare "
                         "against; pick a single-model id" % (mid, b.name, b.type))
    with open(image_path, "rb") as f:
        image = images.decode(f.read(), 10 ** 9)
    tensor = model.preprocess(image)
    if isinstance(tensor, tuple):  # detectors also return where the image sits in the tensor
        tensor = tensor[0]
    if isinstance(tensor, list):  # a recogniser's windows of a line: each one run, the first timed
        tensor = tensor[0]
    return b, tensor


def parser():
    p = argparse.ArgumentParser(prog="python -m tools.bench raw")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--mid", type=int, required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--min-runs", type=int, default=0, help="keep going past --seconds until this many runs")
    p.add_argument("--max-runs", type=int, default=100000)
    p.add_argument("--engine", default="paddlelite", help="as EDGEAPP_ENGINE")
    p.add_argument("--threads", type=int, default=0, help="Paddle Lite threads, as EDGEAPP_LITE_THREADS")
    p.add_argument("--ort-threads", type=int, default=0, help="ONNX Runtime threads, as EDGEAPP_ORT_THREADS")
    p.add_argument("--cpus", default="", help="CPUs to run on, as EDGEAPP_WORKER_CPUS")
    p.add_argument("--filled", action="store_true",
                   help="a model with no preprocess of its own (mids 3, 9): time its predictor on a filled tensor")
    p.add_argument("--serve", action="store_true",
                   help="load once, then for each line N on stdin time N runs and print them (EOF ends)")
    p.add_argument("--requests", action="store_true",
                   help="after the runs, time whole requests in this process, one at a time (floor.time_requests)")
    return p


def engine_settings(args):
    """The engines' settings as the service's worker would have them with the same settings."""
    from edgeapp import config, engines

    return engines.Settings(args.engine, args.threads or None, None,
                            args.ort_threads or engines.ort_threads_default(config.cpu_set(args.cpus)))


def main(argv):
    args = parser().parse_args(argv)
    from edgeapp import config, engines

    if args.cpus:
        os.sched_setaffinity(0, config.cpu_set(args.cpus))

    b, tensor = model_tensor(args.model_dir, args.mid, args.image, args.filled)
    t0 = time.monotonic()
    settings = engine_settings(args)
    pred = engines.open_predictor(b, settings)
    for _ in range(2):  # warm-up, as the service does: both engines allocate on the first runs
        pred.run([tensor])
    load_s = time.monotonic() - t0
    info = {"mid": b.id, "name": b.name, "type": b.type, "input_shape": list(tensor.shape), "load_s": load_s}
    if not args.serve:
        info.update(time_runs(pred, tensor, args.seconds, args.min_runs, args.max_runs))
        if args.requests:
            info["requests"] = time_requests(b, args.image, settings, min(args.seconds, 2.0), 5, args.max_runs)
        print(json.dumps(info))
        return 0
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        n = int(line)
        info.update(time_runs(pred, tensor, 0.0, n, n))
        print(json.dumps(info), flush=True)
    return 0


def time_runs(pred, tensor, seconds, min_runs, max_runs):
    """predictor.run back to back for seconds (and at least min_runs, at most max_runs)."""
    times, elapsed = timed_loop(lambda: pred.run([tensor]), seconds, min_runs, max_runs)
    return {"runs": len(times), "seconds": elapsed, "runs_per_s": len(times) / elapsed,
            "ms_per_run": 1000.0 * elapsed / len(times),
            "p50_ms": 1000.0 * percentile(times, 50), "p99_ms": 1000.0 * percentile(times, 99),
            "rss_mb": mb(rss_of(os.getpid()))}


def raw_command(model_dir, mid, image_path, settings):
    """The raw loop's command and environment, run as the server's settings run its worker: its
    engine (EDGEAPP_ENGINE), Paddle Lite threads (EDGEAPP_LITE_THREADS; on x86 OpenMP's
    OMP_NUM_THREADS), ONNX Runtime threads (EDGEAPP_ORT_THREADS) and CPUs (EDGEAPP_WORKER_CPUS)."""
    from edgeapp.worker import threads_env

    settings = settings or {}
    threads = int(settings.get("EDGEAPP_LITE_THREADS") or 0)
    cmd = mode_command("raw", "--model-dir", model_dir, "--mid", mid, "--image", image_path,
                       "--engine", settings.get("EDGEAPP_ENGINE") or "paddlelite", "--threads", threads,
                       "--ort-threads", int(settings.get("EDGEAPP_ORT_THREADS") or 0),
                       "--cpus", settings.get("EDGEAPP_WORKER_CPUS") or "")
    return cmd, child_env(threads_env(threads))


def raw_loop(model_dir, mid, image_path, seconds, min_runs, max_runs, settings=None, requests=False,
             filled=False):
    """The raw loop in a fresh process (raw_command); with requests, then time_requests as well;
    filled: model_tensor's."""
    cmd, env = raw_command(model_dir, mid, image_path, settings)
    cmd += ["--seconds", str(seconds), "--min-runs", str(min_runs), "--max-runs", str(max_runs)]
    cmd += ["--requests"] if requests else []
    cmd += ["--filled"] if filled else []
    out = subprocess.run(cmd, env=env, cwd=MODE_CWD, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=hard_cap(seconds) + 300)
    if out.returncode != 0:
        raise SystemExit("the raw loop for mid %d failed:\n%s%s" % (mid, out.stdout, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


class RawServer:
    """One raw-loop process (raw_command, --serve), loaded once, that times N runs whenever asked:
    the stand-in for the worker in paired.raw_against_raw."""

    def __init__(self, model_dir, mid, image_path, settings=None, timeout=300.0):
        cmd, env = raw_command(model_dir, mid, image_path, settings)
        self.mid, self.timeout = mid, timeout
        self.err = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: Paddle Lite's log cannot fill it
        self.proc = subprocess.Popen(cmd + ["--serve"], env=env, cwd=MODE_CWD, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, universal_newlines=True)
        self.info = self._answer()

    def runs(self, n):
        self.proc.stdin.write("%d\n" % n)
        self.proc.stdin.flush()
        return self._answer()

    def _answer(self):
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.err.seek(0)
            raise SystemExit("the raw loop for mid %d failed:\n%s" % (self.mid, self.err.read()))
        return json.loads(line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.err.close()
