#!/usr/bin/env python3
"""Run a bundle's model.onnx under ONNX Runtime on the reference input and compare with the reference.

    .venv/bin/python tools/convert/ort_check.py model.onnx reference.npz [--runs N] [--threads N]

ONNX Runtime's counterpart of lite_check.py. Runs under the SERVICE venv, as lite_check.py does, in its
own process so that the peak RSS is this model's session alone. The session has the service engine's
own options (edgeapp.engines.onnx_runtime.session_options): --threads intra-op threads (default:
engines.ort_threads_default, as EDGEAPP_ORT_THREADS=0), one inter-op thread, no spinning, memory arena
and pattern on, every graph optimisation. The input must be the reference's
fixed NCHW shape. Prints one JSON line: max_abs_diff, output names and shapes, ms per run (mean of
--runs on the first input, after the comparison runs warmed it up), peak RSS in MB.
"""
import argparse
import sys
import time

import numpy as np

import check_outputs
from edgeapp import engines


def session(path, threads):
    import onnxruntime as ort

    from edgeapp.engines.onnx_runtime import session_options
    return ort.InferenceSession(path, sess_options=session_options(threads), providers=["CPUExecutionProvider"])


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("reference")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=engines.ort_threads_default())
    args = p.parse_args(argv)
    samples, want, stacked = check_outputs.load_reference(args.reference)
    sess = session(args.model, args.threads)
    inputs = sess.get_inputs()
    if len(inputs) != 1 or list(inputs[0].shape) != list(samples[0].shape):
        return check_outputs.report({"error": "the ONNX inputs are %s; the bundle feeds one %s"
                                     % ([(i.name, i.shape) for i in inputs], list(samples[0].shape))})
    name = inputs[0].name
    got = check_outputs.run_all(lambda x: sess.run(None, {name: np.ascontiguousarray(x, np.float32)}), samples, stacked)
    t0 = time.monotonic()
    for _ in range(max(1, args.runs)):
        sess.run(None, {name: samples[0]})
    ms = (time.monotonic() - t0) * 1000.0 / max(1, args.runs)
    result = check_outputs.compare(got, want, "ONNX Runtime")
    result.update(output_names=[o.name for o in sess.get_outputs()], inputs=len(samples), threads=args.threads,
                  output_shapes=[list(np.shape(g))[1 if stacked else 0:] for g in got],
                  ms_per_run=round(ms, 2), peak_rss_mb=check_outputs.peak_rss_mb())
    return check_outputs.report(result)


if __name__ == "__main__":
    sys.exit(main())
