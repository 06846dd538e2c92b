#!/usr/bin/env python3
"""Run a converted .nb on the reference input and compare with the reference runtime's outputs.

    .venv/bin/python tools/convert/lite_check.py MODEL.nb reference.npz [--runs N]

Runs under the SERVICE venv (it needs paddlelite), in its own process so that the predictor's
memory is given back when it ends. Compares every input in the file (one, or several stacked: real
photos). Prints one JSON line: max_abs_diff, output shapes, ms per run (mean of --runs on the first
input, after the comparison runs warmed it up) and the process's peak RSS in MB.
"""
import argparse
import json
import resource
import sys
import time

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("reference")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    from paddlelite.lite import MobileConfig, create_paddle_predictor

    ref = np.load(args.reference)
    # "input" is one tensor, or several stacked (real photos); "output<i>" then stacked the same way.
    stacked = ref["input"].ndim == 5
    samples = list(ref["input"]) if stacked else [ref["input"]]
    want = [ref["output%d" % i] for i in range(len(ref.files) - 1)]
    config = MobileConfig()
    config.set_model_from_file(args.model)
    pred = create_paddle_predictor(config)
    n_in = len(pred.get_input_names())
    if n_in != 1:
        print(json.dumps({"error": "the model has %d inputs; bundles take one" % n_in}))
        return 1

    def run(x):
        pred.get_input(0).from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        pred.run()
        # Copies: the predictor's outputs are views that the next run overwrites.
        return [np.array(pred.get_output(i).numpy()) for i in range(len(pred.get_output_names()))]

    per = [run(x) for x in samples]
    got = [np.stack([p[i] for p in per]) for i in range(len(per[0]))] if stacked else per[0]
    t0 = time.monotonic()
    for _ in range(max(1, args.runs)):
        run(samples[0])
    ms = (time.monotonic() - t0) * 1000.0 / max(1, args.runs)
    if len(got) != len(want):
        print(json.dumps({"error": "Paddle Lite gives %d outputs, the reference %d" % (len(got), len(want))}))
        return 1
    diff, scale = 0.0, 0.0
    for g, w in zip(got, want):
        g, w = np.asarray(g, np.float32).reshape(-1), np.asarray(w, np.float32).reshape(-1)
        if g.size != w.size:
            print(json.dumps({"error": "output sizes differ: Paddle Lite %d, reference %d" % (g.size, w.size)}))
            return 1
        if g.size:
            diff = max(diff, float(np.abs(g - w).max()))
            scale = max(scale, float(np.abs(w).max()))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    shapes = [list(np.shape(g))[1 if stacked else 0:] for g in got]
    print(json.dumps({"max_abs_diff": diff, "reference_max_abs": scale, "output_shapes": shapes, "inputs": len(samples),
                      "ms_per_run": round(ms, 2), "peak_rss_mb": round(rss, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
