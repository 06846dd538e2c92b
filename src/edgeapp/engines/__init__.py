"""The inference engines: one module per runtime, each behind the same small interface.

An engine module has NAME, PACKAGE, version(), check() (refuses a runtime that would give wrong
answers) and Predictor(model_path, input_shape, settings), whose predictor has input_names,
output_names, run(list of float32 NCHW arrays) -> list of arrays the caller owns, last_run_ms and
selfcheck(). Memory is measured around loading and warm-up by the accelerator, the same for both.

Only the worker process imports an engine module (through module()): Paddle Lite's run() holds the
GIL, and neither runtime belongs in the HTTP process (DESIGN.md, "Architecture"). This package's
own code imports neither.
"""
import collections
import importlib
import os

PADDLELITE = "paddlelite"
ONNXRUNTIME = "onnxruntime"
NAMES = (PADDLELITE, ONNXRUNTIME)
# The bundle.json key that names each engine's model file.
FILE_KEYS = {PADDLELITE: "model", ONNXRUNTIME: "onnx_model"}
_MODULES = {PADDLELITE: "edgeapp.engines.paddle_lite", ONNXRUNTIME: "edgeapp.engines.onnx_runtime"}


class EngineMissing(Exception):
    pass


class Settings(collections.namedtuple("Settings", "engine lite_threads power_mode ort_threads")):
    """What the engines are told. engine: the service's choice for bundles that name none.
    lite_threads, power_mode: Paddle Lite's (None: its defaults). ort_threads: ONNX Runtime's
    intra-op threads (None: ort_threads_default())."""

    __slots__ = ()

    def __new__(cls, engine=PADDLELITE, lite_threads=None, power_mode=None, ort_threads=None):
        return super().__new__(cls, engine, lite_threads, power_mode, ort_threads)


def module(name):
    """The engine module of that name, imported now; EngineMissing when its runtime is not installed."""
    try:
        return importlib.import_module(_MODULES[name])
    except ImportError as e:
        raise EngineMissing("the %s engine cannot be loaded on this system (%s): install it, or choose "
                            "the other engine (EDGEAPP_ENGINE, or \"engine\" in the bundle)" % (name, e))


def choose(bundle, default):
    """The engine that runs a bundle: the one its bundle.json names; else the service's, if the
    bundle has its file; else the only engine it has a file for (a bundle made for one engine)."""
    if bundle.engine:
        return bundle.engine
    have = [name for name in NAMES if bundle.model_files.get(name)]
    return default if default in have or len(have) != 1 else have[0]


def from_config(settings):
    """Settings from the service's settings (edgeapp.config), for a process of its own."""
    from edgeapp import config

    power = None if settings.lite_power_mode == "default" else settings.lite_power_mode
    return Settings(settings.engine, settings.lite_threads or None, power,
                    settings.ort_threads or ort_threads_default(config.cpu_set(settings.worker_cpus)))


def ort_threads_default(cpus=None):
    """ONNX Runtime's intra-op threads when the setting is 0: the worker's CPUs when it has its
    own (EDGEAPP_WORKER_CPUS), else all CPUs but one, which the HTTP process needs."""
    if cpus:
        return len(cpus)
    return max(1, len(os.sched_getaffinity(0)) - 1)


class RuntimeCheckFailed(Exception):
    """The runtime would give wrong answers: nothing is served (the worker stops)."""


def dist_version(package):
    """An installed package's version, or "unknown"."""
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:
        return "unknown"


def open_predictor(bundle, settings):
    """A predictor for one bundle on its engine, outside the service (benchmarks, tools)."""
    name = choose(bundle, settings.engine)
    if name not in bundle.model_files:
        raise EngineMissing("model %d (%s) has no %s file" % (bundle.id, bundle.name, name))
    engine = module(name)
    engine.check()
    return engine.Predictor(bundle.model_files[name], bundle.input_shape, settings)
