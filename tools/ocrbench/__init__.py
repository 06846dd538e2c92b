"""The OCR accuracy benchmark (`make bench-accuracy`, `python -m tools.ocrbench`).

edgeapp's OCR (mid 3) against a reference reader of the same PP-OCRv4 weights with dynamic shapes
(RapidOCR 1.4.5 on Paddle Inference, its defaults: PaddleOCR's standard pre- and post-processing),
on the test set of tools/ocrset.py, generated at run time.

    testset.py      writes the set: images and index.json (the ground truth)
    runner.py       the loop both readers share (timing, peak RSS, JSON); stdlib + OpenCV only
    edge_reader.py  edgeapp's reader, in .venv (Engine + LocalAccelerator, OCR bundles only)
    ref_reader.py   the reference reader, in the tool venv (rapidocr_paddle from its cached wheel)
    score.py        character error rate, word-gap errors, line recall and precision per group
    report.py       the Markdown report and its section in BENCHMARKS.md
"""
