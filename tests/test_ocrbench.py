"""tools/ocrbench: the scores it reports, its BENCHMARKS.md section, and one quick run of both
readers (edgeapp's mid 3 and the RapidOCR reference) on a few generated images."""
import json
import subprocess
import sys

import pytest

from support import MODEL_DIR, REPO
from tools.ocrbench import report, score

TOOL_PY = REPO / "build" / "tool-venv" / "bin" / "python"


def _quad(left, top, right, bottom):
    return [[left, top], [right, top], [right, bottom], [left, bottom]]


def test_pages_score_recall_precision_and_the_text_of_a_line_cut_in_two():
    index = {"pages": [{"group": "g", "truth": [{"text": "one two three", "quad": _quad(0, 0, 300, 20)},
                                                {"text": "four five", "quad": _quad(0, 40, 200, 60)},
                                                {"text": "six", "quad": _quad(0, 80, 50, 100)}]}]}
    found = [{"text": "three", "quad": _quad(160, 0, 300, 20)},  # a line the detector cut in two
             {"text": "one two", "quad": _quad(0, 0, 140, 20)},
             {"text": "four flve", "quad": _quad(2, 38, 204, 61)},
             {"text": "noise", "quad": _quad(400, 400, 500, 420)}]
    g = score.score_pages(index, {"pages": [{"lines": found, "ms": 10.0}]})["g"]
    assert (g["truth"], g["found"], g["matched"]) == (3, 4, 1)  # only "four five" overlaps at IoU >= 0.5
    assert g["chars"] == len("onetwothree") + len("fourfive") + len("six")
    assert g["errors"] == 1 + 3  # "flve", and "six" never read
    assert g["space_errors"] == 0


def test_lines_score_counts_errors_over_the_group():
    index = {"lines": [{"group": "a", "text": "abcd"}, {"group": "a", "text": "ef gh"}, {"group": "b", "text": "x"}]}
    got = {"lines": [{"text": "abed", "ms": 1}, {"text": "efgh", "ms": 2}, {"text": "x", "ms": 3}]}
    s = score.score_lines(index, got)
    assert (s["a"]["chars"], s["a"]["errors"], s["a"]["space_errors"], s["a"]["exact"]) == (8, 1, 1, 1)
    assert (s["b"]["errors"], s["b"]["exact"], s["b"]["ms"]) == (0, 1, [3])


def test_the_report_replaces_only_its_own_section(tmp_path):
    path = tmp_path / "B.md"
    path.write_text("# Benchmarks\n\nbefore\n\n%s\nold\n%s\n\nafter\n" % (report.BEGIN, report.END))
    report.write_section(str(path), "OCR", "new table\n")
    text = path.read_text()
    assert "old" not in text and "before" in text and text.endswith("after\n")
    assert text.count(report.BEGIN) == 1 and "## OCR\n\nnew table\n" + report.END in text


@pytest.mark.tool_runs
def test_quick_run_of_both_readers(tmp_path):
    if not TOOL_PY.exists():
        pytest.skip("no tool venv (make tool-venv; make test builds it)")
    out_md = tmp_path / "B.md"
    res = subprocess.run([sys.executable, "-m", "tools.ocrbench", "--quick", "--set-dir", str(tmp_path / "set"),
                          "--model-dir", MODEL_DIR, "--out", str(out_md)], cwd=str(REPO),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    index = json.loads((tmp_path / "set" / "index.json").read_text())
    edge = json.loads((tmp_path / "set" / "edgeapp.json").read_text())
    ref = json.loads((tmp_path / "set" / "reference.json").read_text())
    # short lines are read right by both (English with its word gaps; Chinese and digits exactly)
    for item, e, r in zip(index["lines"], edge["lines"], ref["lines"]):
        if item["group"] in ("zh 6-28 chars", "zh 40 chars"):
            assert e["text"] == item["text"] and r["text"] == item["text"]
    page = index["pages"][0]
    assert page["group"] == "page en"
    truth = {t["text"] for t in page["truth"]}
    assert truth & {f["text"] for f in ref["pages"][0]["lines"]}  # the reference reads whole lines
    assert edge["models"]["3"]["memory_mb"] > 0 and edge["pages_peak_rss_mb"] > 0
    text = out_md.read_text()
    assert "| page en | 1 (8) |" in text and "| zh 40 chars | 1 |" in text and "| **all** |" in text
    again = subprocess.run([sys.executable, "-m", "tools.ocrbench", "--rescore", "--set-dir", str(tmp_path / "set")],
                           cwd=str(REPO), stdout=subprocess.PIPE, universal_newlines=True, timeout=60, check=True)
    assert again.stdout.strip() == (tmp_path / "set" / "report.md").read_text().strip()
