"""The Paddle Lite engine (model.nb): the only module that imports Paddle Lite.

Paddle Lite's predictor.run() holds the GIL for the whole inference, so only the worker process
imports this module (DESIGN.md, "Architecture").
"""
import time

import numpy as np
from paddlelite.lite import MobileConfig, create_paddle_predictor

from edgeapp.engines import PADDLELITE, RuntimeCheckFailed, dist_version

NAME = PACKAGE = PADDLELITE
POWER_MODES = ("high", "low", "full", "no_bind", "rand_high", "rand_low")


def version():
    return dist_version(PACKAGE)


def check():
    # paddlelite 2.13rc0 with numpy 2.x: from_numpy() writes nothing and every output is garbage.
    major = int(np.__version__.split(".")[0])
    if major >= 2:
        raise RuntimeCheckFailed(
            "numpy %s is installed; Paddle Lite's from_numpy() silently writes zeros with numpy 2. "
            "Install numpy<2 (requirements.txt pins 1.26.4)." % np.__version__)


def _power_mode(name):
    """'high' -> PowerMode.LITE_POWER_HIGH (ARM builds: which cores the kernels are bound to)."""
    from paddlelite.lite import PowerMode
    return getattr(PowerMode, "LITE_POWER_" + name.upper())


class Predictor:
    """One Paddle Lite predictor for one .nb file, for one fixed input shape.

    Its outputs are copied: Paddle Lite's are views of buffers the next run overwrites."""

    def __init__(self, model_path, input_shape, settings):
        config = MobileConfig()
        config.set_model_from_file(model_path)
        # ARM builds only; the x86 wheel has neither.
        if settings.lite_threads and hasattr(config, "set_threads"):
            config.set_threads(int(settings.lite_threads))
        if settings.power_mode and hasattr(config, "set_power_mode"):
            config.set_power_mode(_power_mode(settings.power_mode))
        self.model_path = model_path
        self.input_shape = list(input_shape)
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
        outs = [np.array(self._p.get_output(i).numpy()) for i in range(len(self.output_names))]
        self.last_run_ms = (time.monotonic() - t0) * 1000.0  # tensors in, run, tensors out
        return outs

    def selfcheck(self):
        """Write a known tensor, read it back: refuses to serve if the runtime drops input data."""
        shape = self.input_shape
        probe = (np.arange(int(np.prod(shape)), dtype=np.float32) % 251.0 / 251.0).reshape(shape)
        t = self._p.get_input(0)
        t.from_numpy(probe)
        back = t.numpy()
        if back.shape != tuple(shape) or not np.array_equal(back, probe):
            raise RuntimeCheckFailed(
                "%s: input tensor read back differs from what was written; Paddle Lite and numpy "
                "disagree (numpy %s). Refusing to serve wrong answers." % (self.model_path, np.__version__))
