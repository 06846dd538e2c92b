"""Service benchmark: edgeapp against the raw loop of its engine and the server a user would run
instead (Paddle Lite: a naive one-process server; ONNX Runtime: a FastAPI + uvicorn peer).

    .venv/bin/python -m tools.bench                      # mids 2 and 1, every endpoint, c = 1..16
    .venv/bin/python -m tools.bench --mid 2 --seconds 10 --runs 3 --out BENCHMARKS.md
    make bench-service                                   # the same, results into BENCHMARKS.md
    make bench-service ENGINE=onnxruntime                # on ONNX Runtime, the peer beside (a section of its own)
    make bench-engines                                   # every model on both engines, short (tools.bench.engines)

In ONE run, for each model, on the same input image (so the same input tensor):
  raw      the model's file for the engine (EDGEAPP_ENGINE: model.nb or model.onnx) in a fresh process
           (edgeapp.engines), the tensor prepared once, predictor.run back to back, the worker's
           threads and CPUs: the limit, as runs/s and ms/run;
  edgeapp  `python -m edgeapp serve` on 127.0.0.1 (a free port), at each concurrency on the binary,
           base64 and multipart endpoints, keep-alive connections;
  naive    on Paddle Lite, tools/naive_server.py: decode + preprocess + predictor in the request thread;
  peer     on ONNX Runtime, tools/peer/server.py: FastAPI + uvicorn, onnxruntime in a `def` handler.
Concurrency 1's floor beside them: after its first loop the raw process also times whole requests
through edgeapp's own code, one at a time, with neither HTTP nor the worker (time_requests), and
wrk times a bodiless GET /api/health at c=1 over keep-alive.
Then paired rounds (raw, edgeapp saturated, raw, ...: the ratios the targets are judged on) and, for
models slower than STEADY_MS a run, the same rounds with a second raw process in edgeapp's place
(raw_against_raw): how far this host's noise alone moves that ratio.
Per case: successful req/s, p50/p95/p99 latency, 503 and error counts, peak RSS of the server and
its children; /api/health latency, polled from a separate thread, during the highest concurrency;
per server: start-up time to ready and idle RSS.

Load: wrk (Debian package `wrk`) for the binary endpoint when it is installed, else our own Python
client (threads + http.client keep-alive, in its own process so it does not share a GIL with the
health poller). Every loop is bounded in requests and in seconds; everything is on 127.0.0.1.

The modules, one per measurement:
  run       the command line and one whole run, in order       raw       the raw Paddle Lite loop
  floor     concurrency 1's floor (time_requests, health_c1)   service   the cases: endpoints x concurrency
  paired    paired rounds and raw against raw                  overload  the overload bursts and load
  clients   our Python load clients (py_load, early_load)      wrk       the wrk client and its Lua script
  servers   the servers under test (tools.launch's Server)     watch     /api/health poller, RSS sampler
  bodies    the request bodies                                 timing    Server-Timing, steady rates
  summary   medians over the runs                              report    the Markdown and its section
  meta      machine, git, version                              chart     the PNG (matplotlib, optional)
  common    percentiles, units, the bounded loop, sub-process commands

Internal modes (run by the benchmark itself in subprocesses, from the repository's root; usable by
hand too):
    python -m tools.bench raw  --model-dir D --mid N --image F --seconds S --max-runs N [--requests]
    python -m tools.bench raw  --model-dir D --mid N --image F --serve     # then "N" lines on stdin
    python -m tools.bench load --url U --body F --content-type T --concurrency C --seconds S --max-requests N
    python -m tools.bench chart RESULTS.json OUT.png
"""
