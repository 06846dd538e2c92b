"""The naive baseline of the service benchmark (tools.bench): one process, the predictor called in
the request thread. The benchmark starts it with tools.launch (as it starts edgeapp); by hand:

    .venv/bin/python tools/naive_server.py --host 127.0.0.1 --port 9877 --model-dir build/models/x86

What a first implementation would do: a Bottle app on cheroot whose handler decodes the image,
preprocesses it with the same edgeapp model class, and calls Paddle Lite directly, with a lock
around each predictor. Same endpoint shape as edgeapp's binary endpoint
(POST /api/model/service/binary?mid=N, raw image body) plus GET /api/health. Nothing else: no
limits, no deadlines, no queue. It exists only so the benchmark can show what the worker process
buys: predictor.run() holds the GIL, so here every inference freezes every other request thread,
/api/health included.
"""
import argparse
import os
import signal
import sys
import threading
import time

import bottle
import numpy as np
from cheroot import wsgi

from edgeapp import engines, images, models
from edgeapp.bundle import load_bundles
from edgeapp.errors import EdgeError
from edgeapp.results import dumps, failure, success

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_PIXELS = 40 * 1000 * 1000


class DirectAccelerator:
    """Predictors in this process; run() in the caller's thread, one job per predictor at a time."""

    def __init__(self, bundles):
        self._predictors = {}
        self._locks = {}
        for mid, b in sorted(bundles.items()):
            if not b.runs_model:
                continue
            p = engines.open_predictor(b, engines.Settings())
            for fill in (0.0, 0.5):  # warm up at the fixed shape, as edgeapp does
                p.run([np.full(b.input_shape, fill, dtype=np.float32)])
            self._predictors[mid] = p
            self._locks[mid] = threading.Lock()

    def run(self, mid, inputs, deadline=None):
        with self._locks[mid]:
            return self._predictors[mid].run(inputs)


def make_app(bundles, accel):
    ready = {mid: models.build(b, bundles) for mid, b in bundles.items()}
    in_flight = [0]  # inference requests being worked on: the benchmark waits for 0 between cases
    count_lock = threading.Lock()
    app = bottle.Bottle()
    # Keep bodies in memory like edgeapp does (bottle spools anything over 100 KB to a file).
    bottle.BaseRequest.MEMFILE_MAX = 20 * 1024 * 1024

    def reply(status, envelope):
        bottle.response.status = status
        bottle.response.content_type = "application/json; charset=utf-8"
        return dumps(envelope).encode("utf-8")

    @app.post("/api/model/service/binary")
    def binary():
        try:
            mid = int(bottle.request.query.get("mid", ""))
            model = ready[mid]
        except (ValueError, KeyError):
            return reply(404, failure(1004, "unknown mid"))
        with count_lock:
            in_flight[0] += 1
        try:
            image = images.decode(bottle.request.body.read(), MAX_PIXELS)
            return reply(200, success({"result": model.infer(image, accel)}))
        except EdgeError as e:
            return reply(e.status, failure(e.code, e.msg))
        finally:
            with count_lock:
                in_flight[0] -= 1

    @app.get("/api/health")
    def health():
        return reply(200, success({"ready": True, "models_ready": sorted(ready), "in_flight": in_flight[0]}))

    return app


def server_parser(description):
    """The command line of the benchmark's baseline servers (this one, tools/peer/server.py): where
    to listen and the model folder."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model-dir", default=os.environ.get("EDGEAPP_MODEL_DIR")
                   or os.path.join(REPO, "build", "models", "x86"))
    return p


def main(argv=None):
    p = server_parser(__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=8, help="cheroot threads (edgeapp's default is 8)")
    args = p.parse_args(argv)

    t0 = time.monotonic()
    bundles = load_bundles(args.model_dir)
    app = make_app(bundles, DirectAccelerator(bundles))
    server = wsgi.Server((args.host, args.port), app, numthreads=args.threads)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    server.prepare()
    threading.Thread(target=server.serve, name="http", daemon=True).start()
    print("naive server ready on %s:%d in %.1f s" % (args.host, args.port, time.monotonic() - t0), flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
