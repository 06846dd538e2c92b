#!/usr/bin/env python3
"""Run a converted .nb on the reference input and compare with the reference runtime's outputs.

    .venv/bin/python tools/convert/lite_check.py MODEL.nb reference.npz [--runs N]

Runs under the SERVICE venv (it needs paddlelite), in its own process so that the predictor's
memory is given back when it ends. Compares every input in the file (one, or several stacked: real
photos). Prints one JSON line: max_abs_diff, output shapes, ms per run (mean of --runs on the first
input, after the comparison runs warmed it up) and the process's peak RSS in MB.
"""
import argparse
import sys
import time

import numpy as np

import check_outputs


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("reference")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    from paddlelite.lite import MobileConfig, create_paddle_predictor

    samples, want, stacked = check_outputs.load_reference(args.reference)
    config = MobileConfig()
    config.set_model_from_file(args.model)
    pred = create_paddle_predictor(config)
    n_in = len(pred.get_input_names())
    if n_in != 1:
        return check_outputs.report({"error": "the model has %d inputs; bundles take one" % n_in})

    def run(x):
        pred.get_input(0).from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        pred.run()
        # Copies: the predictor's outputs are views that the next run overwrites.
        return [np.array(pred.get_output(i).numpy()) for i in range(len(pred.get_output_names()))]

    got = check_outputs.run_all(run, samples, stacked)
    t0 = time.monotonic()
    for _ in range(max(1, args.runs)):
        run(samples[0])
    ms = (time.monotonic() - t0) * 1000.0 / max(1, args.runs)
    result = check_outputs.compare(got, want, "Paddle Lite")
    result.update(output_shapes=[list(np.shape(g))[1 if stacked else 0:] for g in got], inputs=len(samples),
                  ms_per_run=round(ms, 2), peak_rss_mb=check_outputs.peak_rss_mb())
    return check_outputs.report(result)


if __name__ == "__main__":
    sys.exit(main())
