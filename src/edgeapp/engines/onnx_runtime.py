"""The ONNX Runtime engine (model.onnx): the only module that imports onnxruntime.

The settings that matter on a small board, each chosen here once for every model:
- intra-op threads from the setting (EDGEAPP_ORT_THREADS), and one inter-op thread: models run
  one at a time in the worker, and the HTTP process needs a core of its own;
- no spinning: ONNX Runtime's pool threads busy-wait for work by default, which takes a core from
  the HTTP process while the worker is idle;
- the CPU memory arena and memory pattern on: every model sees one fixed input shape, so the
  pattern planned on the first run is the one reused, and the arena stops growing after warm-up
  (the RSS per model is in the README);
- every graph optimisation (ORT_ENABLE_ALL): fused kernels for the CPU this runs on.
"""
import time

import numpy as np
import onnxruntime as ort

from edgeapp.engines import ONNXRUNTIME, dist_version

NAME = PACKAGE = ONNXRUNTIME


def version():
    return ort.__version__ or dist_version(PACKAGE)


def check():
    """Nothing known to refuse: ONNX Runtime copies its inputs from numpy 1 and 2 alike."""


def session_options(threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = True
    opts.enable_mem_pattern = True
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: its warnings about unused initialisers are noise
    return opts


class Predictor:
    """One ONNX Runtime session for one model.onnx, whose input is the bundle's fixed shape."""

    def __init__(self, model_path, input_shape, settings):
        self.model_path = model_path
        self.input_shape = list(input_shape)
        self.last_run_ms = 0.0
        self._s = ort.InferenceSession(model_path, sess_options=session_options(settings.ort_threads or 1),
                                       providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self._s.get_inputs()]
        self.output_names = [o.name for o in self._s.get_outputs()]

    def run(self, inputs):
        """inputs: list of float32 NCHW arrays, one per model input. Returns the outputs (new arrays)."""
        if len(inputs) != len(self.input_names):
            raise ValueError("model takes %d inputs, got %d" % (len(self.input_names), len(inputs)))
        t0 = time.monotonic()
        feed = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in zip(self.input_names, inputs)}
        outs = self._s.run(self.output_names, feed)
        self.last_run_ms = (time.monotonic() - t0) * 1000.0
        return outs

    def selfcheck(self):
        """The file's input is the bundle's input shape (a model built for another shape is refused)."""
        declared = self._s.get_inputs()[0].shape
        fixed = [d if isinstance(d, int) else None for d in declared]
        if len(fixed) != 4 or any(d is not None and d != want for d, want in zip(fixed, self.input_shape)):
            raise ValueError("%s takes input %s, not the bundle's input_shape %s (rebuild the bundle)"
                             % (self.model_path, declared, self.input_shape))
