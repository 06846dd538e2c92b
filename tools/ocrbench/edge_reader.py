"""edgeapp's reader for the benchmark: run in .venv, `python -m tools.ocrbench.edge_reader`.

Loads only the OCR bundles (mid 3 and the detector and direction models its PostProcess names)
with Engine + LocalAccelerator, warmed up as the service's worker does (so their memory is real).
Pages go through engine.infer(mid, image), line crops through the pipeline's recogniser alone.
"""
from edgeapp.accelerator import LocalAccelerator
from edgeapp.bundle import load_bundles
from edgeapp.engine import Engine
from tools.launch import MODEL_DIR
from tools.ocrbench import runner


def ocr_bundles(model_dir, mid):
    """The OCR bundle and the bundles its PostProcess names, by id."""
    every = load_bundles(model_dir)
    post = every[mid].post
    ids = {mid} | {int(post[k]) for k in ("detector", "direction", "page_orientation")
                     if post.get(k) is not None and int(post[k]) in every}
    return {i: every[i] for i in ids}


def main(argv=None):
    p = runner.parser("edgeapp's OCR (Engine + LocalAccelerator) over the benchmark's set")
    p.add_argument("--model-dir", default=MODEL_DIR)
    p.add_argument("--mid", type=int, default=3)
    args = p.parse_args(argv)
    bundles = ocr_bundles(args.model_dir, args.mid)
    accel = LocalAccelerator(bundles, warm=True)
    engine = Engine(bundles, accel)
    ocr = engine.model(args.mid)

    def read_page(img):
        return [{"text": r["label"], "score": round(float(r["score"]), 4),
                 "quad": runner.quad_list(r["extended"]["points"])}
                for r in engine.infer(args.mid, img)["result"]]

    def read_line(img):
        return ocr.recognizer.recognize(img, accel)

    def about():
        return {"models": {str(mid): dict(status, name=bundles[mid].name, input_shape=bundles[mid].input_shape)
                           for mid, status in accel.model_status().items()}}

    runner.run(args.set, args.out, read_page, read_line, about)


if __name__ == "__main__":
    main()
