#!/usr/bin/env python3
"""Paddle Lite on ARM against Paddle Lite on x86: every `--target arm` bundle loaded by the
cross-built aarch64 Paddle Lite (tools/arm/paddle_lite.sh) in the emulated arm64 root, run on the
same input tensor as the x86 bundle of the same name on the x86 wheel; outputs compared, cost
measured. Run on the host as root (chroot), under the service venv:

    PYTHONPATH=src .venv/bin/python tools/arm/lite_compare.py --root ROOT [--x86 build/models/x86]
        [--arm build/models/arm] [--out build/lite-arm-compare] [--only NAME,...]

ROOT is an arm64 root with the aarch64 paddlelite wheel installed (a scratch copy: the repo's src/,
this script and the bundles are copied into ROOT/opt/lite-compare; each run goes through
tools/arm/chroot.sh). One input per model: the bundle's sample image if it has one, else the conversion
check's astronaut photo (build/cache/check-photos), made the bundle's exact input tensor by the
service's code (tools/convert/photo_inputs.py). Every model runs once in a fresh process on each
side (`one`, below), through the service's engine module (edgeapp.engines.paddle_lite), so the
memory figures are one model's: VmRSS after the imports (numpy, paddlelite, edgeapp), after
loading, after one run, and the peak. Under qemu-user the process is the emulator: its RSS holds
qemu's own memory and translated code too, so the increment over the after-imports figure is the
model's cost, the total an upper bound.

Writes OUT/<name>.{input,x86,arm}.npz, OUT/results.json and OUT/table.md (markdown: per output the
max abs difference, also relative to the x86 output's range; per model load and run times and
memory on both sides). Exits 1 when an output differs by more than the bundle's tolerance
(source.tolerance, else 1e-3) times max(1, |x86 output| max), as tools/onnx_vs_lite.py judges.

    python3 tools/arm/lite_compare.py one BUNDLE_DIR INPUT.npz OUT.npz

runs one bundle's model.nb on one input and prints its figures as a JSON line (what the main
command runs, on the host and in the root; needs numpy, paddlelite and edgeapp only).
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PHOTO = REPO / "build" / "cache" / "check-photos" / "astronaut.png"
DEFAULT_TOLERANCE = 1e-3
IN_ROOT = "/opt/lite-compare"  # where the root's copy of src/, this script, bundles and data go
ROOT_PYTHON = "/usr/bin/python3"
RUN_TIMEOUT = 900  # s: PP-OCR det at 640x640 takes about 15 s a run under emulation, loading more


def memory_kb():
    """(VmRSS, VmHWM) of this process in kB, from /proc/self/status; zeros without /proc."""
    found = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key = line.split(":")[0]
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(line.split()[1])
    except OSError:
        pass
    return found.get("VmRSS", 0), found.get("VmHWM", 0)


def run_one(bundle_dir, input_npz, out_npz):
    """Load one bundle's model.nb in this (fresh) process, run it once on the saved input, save
    the outputs; returns the figures."""
    from edgeapp import engines
    from edgeapp.bundle import Bundle

    lite = engines.module(engines.PADDLELITE)  # imported before the first reading: not the model's
    spec = json.loads((Path(bundle_dir) / "bundle.json").read_text())
    x = np.load(input_npz)["input"]
    rss_imports = memory_kb()[0]
    t0 = time.monotonic()
    predictor = engines.open_predictor(Bundle(str(bundle_dir), spec), engines.Settings(engines.PADDLELITE))
    load_s = time.monotonic() - t0
    rss_loaded = memory_kb()[0]
    t0 = time.monotonic()
    outputs = predictor.run([x])
    run_s = time.monotonic() - t0
    rss_run, hwm = memory_kb()
    np.savez(out_npz, **{"out%d" % i: a for i, a in enumerate(outputs)})
    return {"paddlelite": lite.version(), "outputs": predictor.output_names,
            "load_s": round(load_s, 3), "run_s": round(run_s, 3),
            "rss_imports_kb": rss_imports, "rss_loaded_kb": rss_loaded, "rss_run_kb": rss_run,
            "hwm_kb": hwm}


def model_input(spec, folder):
    """The bundle's input tensor from its sample image, else from the astronaut photo: (name, tensor)."""
    sys.path.insert(0, str(REPO / "tools" / "convert"))
    import photo_inputs

    sample = (spec.get("sample") or {}).get("image")
    path = Path(folder) / sample if sample else PHOTO
    if not path.is_file():
        raise SystemExit("error: no input image %s (build/cache/check-photos comes with `make models`)" % path)
    return path.name, photo_inputs.photo_tensor(str(path), spec["input_shape"], spec.get("Preprocess") or {})


def last_json_line(text):
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if not lines:
        raise ValueError("no figures in the output")
    return json.loads(lines[-1])


def run_x86(folder, input_npz, out_npz):
    """`one` in a fresh process of this Python: the x86 figures, measured as the ARM ones are."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "one", str(folder), str(input_npz),
                        str(out_npz)], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if p.returncode:
        raise SystemExit("error: x86 run of %s failed:\n%s" % (folder, p.stderr[-3000:]))
    return last_json_line(p.stdout)


class Root:
    """The arm64 root the ARM runs happen in, the repo's code and the bundles copied in (prepare).
    Each run goes through tools/arm/chroot.sh: /proc, /sys and /dev mounted for it alone."""

    def __init__(self, path):
        self.path = Path(path)
        self.base = self.path / IN_ROOT.lstrip("/")

    def prepare(self):
        if not (self.path / ROOT_PYTHON.lstrip("/")).exists():
            raise SystemExit("error: %s has no %s: not an arm64 root (tools/arm/rootfs.sh)" % (self.path, ROOT_PYTHON))
        if os.geteuid() != 0:
            raise SystemExit("error: running programs in the arm64 root needs root (chroot)")
        if self.base.exists():
            shutil.rmtree(self.base)
        shutil.copytree(REPO / "src" / "edgeapp", self.base / "src" / "edgeapp",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (self.base / "data").mkdir(parents=True)
        shutil.copy2(__file__, self.base / "lite_compare.py")
        return self

    def add_bundle(self, folder):
        dest = self.base / "models" / Path(folder).name
        shutil.copytree(folder, dest)
        return IN_ROOT + "/models/" + Path(folder).name

    def run(self, bundle_in_root, input_npz, name):
        """`one` for a bundle in a fresh Python of the root: the figures, outputs in root's data/."""
        shutil.copy2(input_npz, self.base / "data" / (name + ".input.npz"))
        data = IN_ROOT + "/data/" + name
        cmd = [str(HERE / "chroot.sh"), str(self.path), "/usr/bin/env", "PYTHONPATH=%s/src" % IN_ROOT, ROOT_PYTHON,
               IN_ROOT + "/lite_compare.py", "one", bundle_in_root, data + ".input.npz", data + ".arm.npz"]
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        if p.returncode:
            last = (p.stderr.strip().splitlines() or ["(no message)"])[-1]
            return {"error": "exit %d: %s" % (p.returncode, last), "stderr": p.stderr[-4000:]}
        figures = last_json_line(p.stdout)
        figures["process_s"] = round(time.monotonic() - t0, 1)
        return figures

    def outputs(self, name):
        return self.base / "data" / (name + ".arm.npz")


def compare_outputs(want, got, tolerance):
    """Per output of the x86 run (want) and the ARM run (got), both lists of arrays: shapes, the
    max abs difference, the x86 output's range and the difference relative to it, and whether it
    is within tolerance x max(1, |x86| max)."""
    rows = []
    for i in range(max(len(want), len(got))):
        if i >= len(want) or i >= len(got) or want[i].shape != got[i].shape:
            shapes = [list(a[i].shape) if i < len(a) else None for a in (want, got)]
            rows.append({"output": i, "x86_shape": shapes[0], "arm_shape": shapes[1], "ok": False})
            continue
        w, g = want[i].astype(np.float64), got[i].astype(np.float64)
        diff = float(np.abs(w - g).max()) if w.size else 0.0
        span = float(w.max() - w.min()) if w.size else 0.0
        scale = float(np.abs(w).max()) if w.size else 0.0
        rows.append({"output": i, "x86_shape": list(w.shape), "arm_shape": list(g.shape),
                     "max_abs_diff": diff, "range": span, "relative": diff / span if span else diff,
                     "ok": bool(np.isfinite(g).all()) and diff <= tolerance * max(1.0, scale)})
    return rows


def saved_outputs(path):
    with np.load(path) as z:
        return [z["out%d" % i] for i in range(len(z.files))]


def compare_model(name, x86_dir, arm_dir, out, root):
    """One model on both sides: its record for results.json."""
    spec = json.loads((x86_dir / "bundle.json").read_text())
    photo, tensor = model_input(spec, x86_dir)
    input_npz = out / (name + ".input.npz")
    np.savez(input_npz, input=tensor)
    x86 = run_x86(x86_dir, input_npz, out / (name + ".x86.npz"))
    print("[%s] x86: %.3f s a run" % (name, x86["run_s"]), flush=True)
    arm = root.run(root.add_bundle(arm_dir), input_npz, name)
    record = {"model": name, "id": spec["id"], "input_shape": spec["input_shape"], "input": photo,
              "x86": x86, "arm": arm}
    if "error" in arm:
        print("[%s] ARM: %s" % (name, arm["error"]), flush=True)
        return record
    shutil.copy2(root.outputs(name), out / (name + ".arm.npz"))
    tolerance = float(spec["source"].get("tolerance") or DEFAULT_TOLERANCE)
    record["outputs"] = compare_outputs(saved_outputs(out / (name + ".x86.npz")),
                                        saved_outputs(out / (name + ".arm.npz")), tolerance)
    worst = max((r.get("max_abs_diff", float("inf")) for r in record["outputs"]), default=0.0)
    print("[%s] ARM: load %.1f s, run %.1f s, max abs diff %.3g" % (name, arm["load_s"], arm["run_s"], worst),
          flush=True)
    return record


def mb(kb):
    return "%.1f" % (kb / 1024.0)


def memory_cell(figures):
    """"after imports / +after load and one run / peak" in MB, or "-" when the run failed."""
    if "rss_imports_kb" not in figures:
        return "-"
    return "%s / +%s / %s" % (mb(figures["rss_imports_kb"]), mb(figures["rss_run_kb"] - figures["rss_imports_kb"]),
                              mb(figures["hwm_kb"]))


def table(records):
    """The markdown tables: outputs compared, then each model's cost on both sides."""
    lines = ["| model | output | shape | max abs diff ARM vs x86 | x86 output range | diff / range |",
             "|---|---|---|---|---|---|"]
    for r in records:
        if "outputs" not in r:
            lines.append("| %s (%d) | ARM failed: %s | | | | |" % (r["model"], r["id"], r["arm"]["error"][:200]))
            continue
        for o in r["outputs"]:
            if "max_abs_diff" not in o:
                lines.append("| %s (%d) | %d | x86 %s, ARM %s | shapes differ | | |"
                             % (r["model"], r["id"], o["output"], o["x86_shape"], o["arm_shape"]))
                continue
            lines.append("| %s (%d) | %d %s | %s | %.3g%s | %.3g | %.2g |" % (
                r["model"], r["id"], o["output"], r["x86"]["outputs"][o["output"]], "x".join(map(str, o["x86_shape"])),
                o["max_abs_diff"], "" if o["ok"] else " (over tolerance)", o["range"], o["relative"]))
    lines += ["", "| model | input | x86 first run ms | ARM (emulated) load s | ARM (emulated) first run s "
              "| x86 RSS MB: imports / +model / peak | ARM RSS MB: imports / +model / peak |",
              "|---|---|---|---|---|---|---|"]
    for r in records:
        x, a = r["x86"], r["arm"]
        lines.append("| %s (%d) | %s %s | %.1f | %s | %s | %s | %s |" % (
            r["model"], r["id"], "x".join(map(str, r["input_shape"])), r["input"], x["run_s"] * 1000,
            "%.1f" % a["load_s"] if "load_s" in a else "-", "%.2f" % a["run_s"] if "run_s" in a else "-",
            memory_cell(x), memory_cell(a)))
    return "\n".join(lines) + "\n"


def bundle_pairs(x86_dir, arm_dir, only):
    """(name, x86 folder, arm folder) for every arm bundle; an arm bundle without its x86 twin is
    an error (nothing to compare with)."""
    pairs = []
    for spec in sorted(Path(arm_dir).glob("*/bundle.json")):
        name = spec.parent.name
        if only and name not in only:
            continue
        if not (Path(x86_dir) / name / "bundle.json").is_file():
            raise SystemExit("error: %s has no x86 twin in %s (make models)" % (spec.parent, x86_dir))
        pairs.append((name, Path(x86_dir) / name, spec.parent))
    if not pairs:
        raise SystemExit("error: no bundles in %s (tools/build_models.py --target arm --out %s)" % (arm_dir, arm_dir))
    return pairs


def main(argv=None):
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["one"]:
        if len(argv) != 4:
            raise SystemExit("usage: lite_compare.py one BUNDLE_DIR INPUT.npz OUT.npz")
        print(json.dumps(run_one(*argv[1:])))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", required=True, help="arm64 root with the aarch64 paddlelite wheel installed")
    p.add_argument("--x86", default=str(REPO / "build" / "models" / "x86"))
    p.add_argument("--arm", default=str(REPO / "build" / "models" / "arm"))
    p.add_argument("--out", default=str(REPO / "build" / "lite-arm-compare"))
    p.add_argument("--only", help="bundle names, comma-separated")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = bundle_pairs(args.x86, args.arm, set(args.only.split(",")) if args.only else None)
    root = Root(args.root).prepare()
    records = [compare_model(name, x86, arm, out, root) for name, x86, arm in pairs]
    (out / "results.json").write_text(json.dumps(records, indent=1) + "\n")
    (out / "table.md").write_text(table(records))
    print(table(records))
    bad = [r["model"] for r in records if not all(o["ok"] for o in r.get("outputs", [{"ok": False}]))]
    print("every output agrees within tolerance" if not bad else "differ or failed: %s" % ", ".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
