"""The chart (--chart): throughput and p50 latency against concurrency, per model. It needs
matplotlib, which is never a service dependency: drawn by this interpreter if it has matplotlib,
else by build/chart-venv/bin/python if that exists (`python -m tools.bench chart RESULTS.json
OUT.png` there), else skipped:
    .venv/bin/python -m venv build/chart-venv && build/chart-venv/bin/pip install matplotlib
"""
import json
import os
import subprocess
import sys

from tools.bench.common import MODE_CWD, log, mode_command
from tools.launch import REPO

TOOLS_VENV_PY = os.path.join(str(REPO), "build", "chart-venv", "bin", "python")  # dev-only, for the chart


def main(argv):
    results, out = argv
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(results, encoding="utf-8") as f:
        summary = json.load(f)["summary"]
    mids = list(summary["raw"])
    fig, axes = plt.subplots(2, len(mids), figsize=(5.5 * len(mids), 7), squeeze=False)
    for col, mid in enumerate(mids):
        _draw_model(summary, mid, axes[0][col], axes[1][col])
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    return 0


def _draw_model(summary, mid, top, bottom):
    """One model's column: throughput above, p50 latency below, the raw loop as a dashed line."""
    from matplotlib.ticker import ScalarFormatter

    raw = summary["raw"][mid]
    series = {}
    for c in summary["cases"]:
        if str(c["mid"]) == str(mid):
            series.setdefault("%s %s (%s)" % (c["server"], c["endpoint"], c["client"]), []).append(c)
    for label, cs in sorted(series.items()):
        cs.sort(key=lambda c: c["concurrency"])
        x = [c["concurrency"] for c in cs]
        top.plot(x, [c["rps"] for c in cs], marker="o", label=label)
        bottom.plot(x, [c["p50_ms"] for c in cs], marker="o", label=label)
    top.axhline(raw["runs_per_s"], color="k", linestyle="--", label="raw loop")
    bottom.axhline(raw["ms_per_run"], color="k", linestyle="--", label="raw loop")
    top.set_title("mid %s (%s): throughput" % (mid, raw["name"]))
    bottom.set_title("mid %s: p50 latency" % mid)
    top.set_ylabel("successful req/s")
    bottom.set_ylabel("ms")
    bottom.set_yscale("log")
    top.set_ylim(bottom=0)
    conc = sorted({c["concurrency"] for c in summary["cases"]})
    for ax in (top, bottom):
        ax.set_xscale("log", base=2)
        ax.set_xticks(conc)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel("concurrent clients (wrk latency: over all answers, 503s included)" if ax is bottom else
                      "concurrent clients")
        ax.grid(True, alpha=0.3)
    top.legend(fontsize=8)


def draw_chart(results_json, out):
    """Draw with whichever interpreter has matplotlib; returns False (skipped) when none has."""
    for py in (sys.executable, TOOLS_VENV_PY):
        if not os.path.exists(py):
            continue
        if subprocess.run([py, "-c", "import matplotlib"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode != 0:
            continue
        r = subprocess.run(mode_command("chart", os.path.abspath(results_json), os.path.abspath(out), python=py),
                           cwd=MODE_CWD, timeout=120)
        return r.returncode == 0
    log("chart skipped: no matplotlib here or in build/chart-venv (.venv/bin/python -m venv build/chart-venv "
        "&& build/chart-venv/bin/pip install matplotlib)")
    return False
