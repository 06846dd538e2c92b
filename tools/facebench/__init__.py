"""The face verification benchmark (`make bench-faces`, `python -m tools.facebench`).

edgeapp's face recognition (mid 9) on real photos of several people (tools/faceset: pinned
packages, who is who written by hand): every pair of faces of different photographs compared,
the same-person and different-person similarity distributions, the threshold chosen from them and
the error rates at it, for several crop scales.

    runner.py    the photos through Engine + LocalAccelerator, once per crop scale
    score.py     which face is whom, the pairs, distributions, threshold and error rates (pure)
    report.py    the Markdown report and its section in BENCHMARKS.md
"""
