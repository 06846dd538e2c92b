"""The only module that imports Paddle Lite. It lives in the accelerator process.

Paddle Lite's predictor.run() holds the GIL for the whole inference, so the HTTP process must
never import this module (DESIGN.md, "Architecture").
"""
import time

import numpy as np
from paddlelite.lite import MobileConfig, create_paddle_predictor

try:
    from importlib.metadata import version as _dist_version
except ImportError:  # pragma: no cover - Python < 3.8
    _dist_version = None


class RuntimeCheckFailed(Exception):
    pass


def lite_version():
    try:
        return _dist_version("paddlelite") if _dist_version else "unknown"
    except Exception:
        return "unknown"


def check_numpy():
    # paddlelite 2.13rc0 with numpy 2.x: from_numpy() writes nothing and every output is garbage.
    major = int(np.__version__.split(".")[0])
    if major >= 2:
        raise RuntimeCheckFailed(
            "numpy %s is installed; Paddle Lite's from_numpy() silently writes zeros with numpy 2. "
            "Install numpy<2 (requirements.txt pins 1.26.4)." % np.__version__)


POWER_MODES = ("high", "low", "full", "no_bind", "rand_high", "rand_low")


def _power_mode(name):
    """'high' -> PowerMode.LITE_POWER_HIGH (ARM builds: which cores the kernels are bound to)."""
    from paddlelite.lite import PowerMode
    return getattr(PowerMode, "LITE_POWER_" + name.upper())


class Predictor:
    """One Paddle Lite predictor for one .nb file."""

    def __init__(self, model_path, threads=None, power_mode=None):
        config = MobileConfig()
        config.set_model_from_file(model_path)
        # ARM builds only; the x86 wheel has neither.
        if threads and hasattr(config, "set_threads"):
            config.set_threads(int(threads))
        if power_mode and hasattr(config, "set_power_mode"):
            config.set_power_mode(_power_mode(power_mode))
        self.model_path = model_path
        self.last_run_ms = 0.0
        self._p = create_paddle_predictor(config)
        self.input_names = list(self._p.get_input_names())
        self.output_names = list(self._p.get_output_names())

    def run(self, inputs):
        """inputs: list of float32 NCHW arrays, one per model input. Returns the outputs as arrays."""
        if len(inputs) != len(self.input_names):
            raise ValueError("model takes %d inputs, got %d" % (len(self.input_names), len(inputs)))
        t0 = time.monotonic()
        for i, a in enumerate(inputs):
            self._p.get_input(i).from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        self._p.run()
        outs = [self._p.get_output(i).numpy() for i in range(len(self.output_names))]
        self.last_run_ms = (time.monotonic() - t0) * 1000.0  # tensors in, run, tensors out
        return outs

    def selfcheck(self, shape):
        """Write a known tensor, read it back: refuses to serve if the runtime drops input data."""
        probe = (np.arange(int(np.prod(shape)), dtype=np.float32) % 251.0 / 251.0).reshape(shape)
        t = self._p.get_input(0)
        t.from_numpy(probe)
        back = t.numpy()
        if back.shape != tuple(shape) or not np.array_equal(back, probe):
            raise RuntimeCheckFailed(
                "%s: input tensor read back differs from what was written; Paddle Lite and numpy "
                "disagree (numpy %s). Refusing to serve wrong answers." % (self.model_path, np.__version__))
