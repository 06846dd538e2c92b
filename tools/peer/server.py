"""The peer of the service benchmark on ONNX Runtime (tools.bench, engine onnxruntime): the server a
PC user would write instead of running edgeapp, FastAPI on uvicorn calling onnxruntime in its
handlers. The benchmark starts it beside edgeapp, as it starts tools/naive_server.py for Paddle
Lite; by hand (after `make peer-lib`):

    .venv/bin/python tools/peer/server.py --port 9878 --model-dir build/models/x86 --threads 1

FastAPI and uvicorn come from build/peer-lib (--lib; tools/peer/requirements.txt, hash-pinned),
never from the service's venv; numpy, OpenCV and onnxruntime are the service's own, so both run the
same ONNX Runtime. Same endpoint shape as edgeapp's binary endpoint (POST
/api/model/service/binary?mid=N, raw image body) plus GET /api/health, and the same pre- and
post-processing: edgeapp's model classes around the session.

Written as FastAPI's documentation teaches:
- the inference handler is a plain `def`: the docs say to declare path operations with `def` when
  they call a library that blocks and has no `await` (onnxruntime), so FastAPI runs them in its
  thread pool (40 threads) and the event loop stays free; an `async def` handler would run the
  inference on the event loop itself and freeze every other request, /api/health included. The
  `def` handler is the peer at its best, so the comparison flatters it, not edgeapp.
- /api/health is an `async def`, like the docs' first example: it answers on the event loop.
- one InferenceSession per model, created at start with the same intra-op threads as edgeapp's
  worker and otherwise the defaults (what `ort.InferenceSession(path, sess_options)` gives),
  shared by the request threads without a lock (its run() may be called concurrently);
- `uvicorn.run(app, ...)` with its defaults: one process, httptools and uvloop (installed, as
  "fastapi[standard]" installs them), an access log line per request.
"""
import os
import sys
import threading

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER_LIB = os.path.join(REPO, "build", "peer-lib")
MAX_PIXELS = 40 * 1000 * 1000


class Sessions:
    """One onnxruntime session per model that runs one (the bundle's model.onnx), called where
    edgeapp's model classes call the accelerator."""

    def __init__(self, bundles, threads):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.sessions = {mid: ort.InferenceSession(b.model_files["onnxruntime"], opts,
                                                   providers=["CPUExecutionProvider"])
                         for mid, b in bundles.items() if b.runs_model and b.model_files.get("onnxruntime")}
        self.inputs = {mid: [i.name for i in s.get_inputs()] for mid, s in self.sessions.items()}

    def run(self, mid, inputs, deadline=None):
        return self.sessions[mid].run(None, dict(zip(self.inputs[mid], inputs)))


def make_app(bundles, sessions):
    from fastapi import Body, FastAPI
    from fastapi.responses import JSONResponse

    from edgeapp import images, models
    from edgeapp.errors import EdgeError
    from edgeapp.results import failure, success

    # The models whose every predictor has a session (a pipeline needs its parts' sessions).
    ready = {}
    for mid, b in bundles.items():
        try:
            ready[mid] = models.build(b, bundles)
        except Exception:  # a model this peer cannot build (e.g. one needing a face database) is left out
            continue
    app = FastAPI()
    counter = {"in_flight": 0}  # inference requests being worked on: the benchmark waits for 0 between cases
    lock = threading.Lock()

    @app.post("/api/model/service/binary")
    def binary(mid: int, body: bytes = Body(..., media_type="application/octet-stream")):
        if mid not in ready:
            return JSONResponse(failure(1004, "unknown mid"), status_code=404)
        with lock:
            counter["in_flight"] += 1
        try:
            image = images.decode(body, MAX_PIXELS)
            return success({"result": ready[mid].infer(image, sessions)})
        except EdgeError as e:
            return JSONResponse(failure(e.code, e.msg), status_code=e.status)
        finally:
            with lock:
                counter["in_flight"] -= 1

    @app.get("/api/health")
    async def health():
        return success({"ready": True, "models_ready": sorted(ready), "in_flight": counter["in_flight"]})

    return app


def main(argv=None):
    sys.path.insert(0, REPO)  # run as a script: tools.naive_server is the other baseline, beside it
    from tools.naive_server import server_parser

    p = server_parser(__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (as EDGEAPP_ORT_THREADS)")
    p.add_argument("--lib", default=PEER_LIB, help="where FastAPI and uvicorn are (make peer-lib)")
    args = p.parse_args(argv)
    sys.path.insert(0, args.lib)  # FastAPI and uvicorn, kept out of the service's venv
    import uvicorn

    from edgeapp.bundle import load_bundles

    bundles = load_bundles(args.model_dir)
    app = make_app(bundles, Sessions(bundles, args.threads))
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
