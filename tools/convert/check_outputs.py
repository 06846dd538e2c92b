"""The conversion checks' comparison, shared by lite_check.py (service venv) and ort_check.py (tool venv).

A reference .npz holds "input" (one NCHW tensor, or several stacked: real photos) and "output<i>" (the
reference runtime's outputs, stacked the same way). numpy only.
"""
import json
import resource

import numpy as np


def load_reference(path):
    """(the input samples, the reference outputs, True when they are stacked) of a reference .npz."""
    ref = np.load(path)
    stacked = ref["input"].ndim == 5
    samples = list(ref["input"]) if stacked else [ref["input"]]
    want = [ref["output%d" % i] for i in range(len(ref.files) - 1)]
    return samples, want, stacked


def run_all(run, samples, stacked):
    """run(x) -> outputs for every sample; output i stacked over the samples (as the reference is)."""
    per = [run(x) for x in samples]
    return [np.stack([p[i] for p in per]) for i in range(len(per[0]))] if stacked else per[0]


def compare(got, want, runtime):
    """{"max_abs_diff", "reference_max_abs"}, or {"error"} when the outputs do not line up."""
    if len(got) != len(want):
        return {"error": "%s gives %d outputs, the reference %d" % (runtime, len(got), len(want))}
    diff, scale = 0.0, 0.0
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g, np.float32).reshape(-1), np.asarray(w, np.float32).reshape(-1)
        if g.size != w.size:
            return {"error": "output %d sizes differ: %s %d, reference %d" % (i, runtime, g.size, w.size)}
        if g.size:
            diff = max(diff, float(np.abs(g - w).max()))
            scale = max(scale, float(np.abs(w).max()))
    return {"max_abs_diff": diff, "reference_max_abs": scale}


def peak_rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def report(result):
    """The one JSON line the pipeline reads; exit status 1 on an error."""
    print(json.dumps(result))
    return 1 if "error" in result else 0
