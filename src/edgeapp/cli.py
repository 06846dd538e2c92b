"""Command line: `python -m edgeapp models | infer | selfcheck | serve`."""
import argparse
import logging
import os
import sys

from edgeapp import __version__
from edgeapp.config import default_model_dir
from edgeapp.errors import EdgeError
from edgeapp.results import dumps, failure, success

DEFAULT_MODEL_DIR = default_model_dir()
DEFAULT_MAX_PIXELS = 40 * 1000 * 1000


def _model_dir(args):
    return args.model_dir or os.environ.get("EDGEAPP_MODEL_DIR") or DEFAULT_MODEL_DIR


def _engine_settings():
    """The engines' settings in force (config file of $EDGEAPP_CONFIG, EDGEAPP_* environment), so
    that `infer` and `selfcheck` run each model on the engine the service would."""
    from edgeapp import config, engines

    return engines.from_config(config.load(None))


def _engine_for(args, mid):
    """An in-process engine that loads only what model `mid` runs (a corrupt file of another
    model must not matter: Paddle Lite aborts the process on one)."""
    from edgeapp import models
    from edgeapp.accelerator import LocalAccelerator
    from edgeapp.bundle import load_bundles
    from edgeapp.engine import Engine

    bundles = load_bundles(_model_dir(args))
    needs = []
    if mid in bundles:
        needs = models.build(bundles[mid], bundles).needs()
    accel = LocalAccelerator({n: bundles[n] for n in needs if n in bundles}, _engine_settings(), warm=False)
    return Engine(bundles, accel)


def cmd_models(args):
    from edgeapp.bundle import load_bundles

    bundles = load_bundles(_model_dir(args))
    print("%-4s %-16s %-9s %-12s %s" % ("id", "name", "type", "input", "labels"))
    for mid, b in sorted(bundles.items()):
        h, w = b.max_hw
        labels = len(b.labels) if b.labels else "-"
        if b.type in ("ocr", "ctc_rec") and b.post.get("character_dict"):
            labels = "text"
        print("%-4d %-16s %-9s %-12s %s" % (mid, b.name, b.type, "%dx%d" % (w, h), labels))
    return 0


def cmd_infer(args):
    from edgeapp import render

    try:
        with open(args.image, "rb") as f:
            data = f.read()
        engine = _engine_for(args, args.mid)
        engine.reduce = os.environ.get("EDGEAPP_REDUCED_DECODE", "on").strip().lower() != "off"
        image, size = engine.decode(data, int(os.environ.get("EDGEAPP_MAX_PIXELS", DEFAULT_MAX_PIXELS)),
                                    [args.mid], full=bool(args.show))
        out = engine.infer(args.mid, image, size=size)
    except EdgeError as e:
        print(dumps(failure(e.code, e.msg)))
        return 1
    except OSError as e:
        print("edgeapp: cannot read %s: %s" % (args.image, e.strerror), file=sys.stderr)
        return 2
    print(dumps(success(out)))
    if args.show:
        with open(args.show, "wb") as f:
            f.write(render.to_jpeg(render.draw(image, out["result"])))
    return 0


def cmd_selfcheck(args):
    """Load every model in a worker process, check the runtime, warm up at the input shape, report.

    In a worker, as the service does it: a model file that crashes Paddle Lite is reported, not fatal."""
    from edgeapp.bundle import load_bundles
    from edgeapp.engine import Engine
    from edgeapp.worker import WorkerAccelerator

    bundles = load_bundles(_model_dir(args))
    es = _engine_settings()
    accel = WorkerAccelerator(bundles, slots=1, engine=es.engine, threads=es.lite_threads, power_mode=es.power_mode,
                              ort_threads=es.ort_threads)
    accel.start()
    try:
        engine = Engine(bundles, accel)
        ok = True
        status = accel.model_status()
        for d in engine.describe():
            s = status.get(d["id"], {})
            state = "ready" if d["ready"] else "FAILED: %s" % d["reason"]
            mem = "%s MB" % s["memory_mb"] if s.get("memory_mb") is not None else "-"
            print("model %-3d %-16s %-11s %-8s %s" % (d["id"], d["name"], s.get("engine") or "-", mem, state))
            ok = ok and d["ready"]
    finally:
        accel.stop()
    return 0 if ok else 1


def cmd_serve(args):
    """Serve the HTTP API until SIGTERM or Ctrl-C."""
    from edgeapp import config, server

    try:
        settings = config.load(args.config, flags={"host": args.host, "port": args.port,
                                                   "model_dir": args.model_dir})
    except config.ConfigError as e:
        print("edgeapp: %s" % e, file=sys.stderr)
        return 2
    # The service always logs its start-up and ready lines; -v adds one line per request.
    logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    return server.serve(settings)


def cmd_reload(args):
    """Ask the running service to re-read its model folder (SIGHUP), by pid or from its pidfile."""
    import signal

    from edgeapp import config, pidfile

    pid = args.pid
    if pid is None:
        try:
            settings = config.load(args.config)
        except config.ConfigError as e:
            print("edgeapp: %s" % e, file=sys.stderr)
            return 2
        path = config.service_files(settings)["pidfile"]
        pid = pidfile.read(path)
        if pid is None:
            print("edgeapp: no service pid in %s: is it running?" % path, file=sys.stderr)
            return 7
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as e:
        print("edgeapp: cannot signal pid %d: %s" % (pid, e.strerror), file=sys.stderr)
        return 7
    print("edgeapp (pid %d) is reloading its models; GET /api/models shows them" % pid)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="edgeapp", description="EdgeBoard HTTP model-inference service")
    p.add_argument("--version", action="version", version="edgeapp " + __version__)
    p.add_argument("--model-dir", help="built model bundles (default: $EDGEAPP_MODEL_DIR or %s)" % DEFAULT_MODEL_DIR)
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("models", help="list the installed models")
    pi = sub.add_parser("infer", help="run one model on one image; prints the API's JSON")
    pi.add_argument("--mid", type=int, required=True, help="model id (see `models`)")
    pi.add_argument("image", help="JPEG, PNG, BMP or WebP file")
    pi.add_argument("--show", metavar="OUT.jpg", help="also write the rendered result image")
    sub.add_parser("selfcheck", help="load and warm every model, check the runtime, report memory")
    ps = sub.add_parser("serve", help="serve the HTTP API (settings: defaults < config file < EDGEAPP_* < flags)")
    ps.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    ps.add_argument("--port", help="TCP port (default 9876)")
    ps.add_argument("--config", metavar="FILE", help="KEY=value settings file (default: $EDGEAPP_CONFIG, if set)")
    pr = sub.add_parser("reload", help="make the running service re-read its model folder (SIGHUP)")
    pr.add_argument("--pid", type=int, help="the service's pid (default: from its pidfile)")
    pr.add_argument("--config", help="config file (default: $EDGEAPP_CONFIG)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    handlers = {"models": cmd_models, "infer": cmd_infer, "selfcheck": cmd_selfcheck, "serve": cmd_serve,
                "reload": cmd_reload}
    if args.command not in handlers:
        p.print_help()
        return 2
    try:
        return handlers[args.command](args)
    except Exception as e:
        from edgeapp.bundle import BundleError
        from edgeapp.config import ConfigError
        if isinstance(e, (BundleError, ConfigError)):
            print("edgeapp: %s" % e, file=sys.stderr)
            return 2
        raise
