"""Medians over the runs: one record per raw loop, case, server, overload load and paired model;
the ratios are computed within each run."""
from tools.bench.common import median, percentile
from tools.bench.overload import OVERLOAD_FIELDS, OVERLOAD_LOADS


def summarize(runs, mids):
    """One record per case and per server, medians over the runs; ratios computed within each run."""
    return {"raw": summarize_raw(runs, mids), "cases": summarize_cases(runs),
            "servers": summarize_servers(runs), "overload": summarize_overload(runs),
            "pairs": summarize_pairs(runs, mids), "raw_against_raw": summarize_raw_against_raw(runs, mids),
            "case_seconds": {mid: median([r["case_seconds"][mid] for r in runs]) for mid in mids}}


def summarize_raw(runs, mids):
    raw = {}
    for mid in mids:
        rs = [r["raw"][mid] for r in runs]
        raw[mid] = dict(rs[0])
        for k in ("runs_per_s", "ms_per_run", "p50_ms", "p99_ms", "rss_mb", "load_s"):
            raw[mid][k] = median([x[k] for x in rs])
        raw[mid]["runs_per_s_all"] = [x["runs_per_s"] for x in rs]
        reqs = [x["requests"] for x in rs if x.get("requests")]
        raw[mid]["requests"] = {"p50_ms": median([x["p50_ms"] for x in reqs]),
                                "phases_ms": {k: median([x["phases_ms"].get(k) for x in reqs])
                                              for k in reqs[0]["phases_ms"]}} if reqs else None
    return raw


def case_key(c):
    return c["server"], c["mid"], c["endpoint"], c["concurrency"]


def summarize_cases(runs):
    cases = []
    for key in [case_key(c) for c in runs[0]["cases"]]:
        per_run = []
        for r in runs:
            for c in r["cases"]:
                if case_key(c) == key:
                    c = dict(c)
                    c["ratio"] = c["rps"] / r["raw"][c["mid"]]["runs_per_s"]
                    per_run.append(c)
        m = dict(per_run[0])
        for k in ("rps", "ratio", "p50_ms", "p95_ms", "p99_ms", "ok", "busy", "errors", "peak_mb"):
            m[k] = median([x[k] for x in per_run])
        m["rps_all"] = [x["rps"] for x in per_run]
        if m.get("server_timing"):
            m["server_timing"] = {k: median([(x.get("server_timing") or {}).get(k) for x in per_run])
                                  for k in m["server_timing"]}
        if m["health"]:
            m["health"] = {k: median([x["health"][k] for x in per_run]) for k in m["health"]}
        cases.append(m)
    return cases


def summarize_servers(runs):
    servers = {}
    for kind in runs[0]["servers"]:
        ss = [r["servers"][kind] for r in runs]
        servers[kind] = {"startup_s": median([s["startup_s"] for s in ss]),
                         "idle_mb": median([s["idle"]["total_mb"] for s in ss]),
                         "idle_processes_mb": ss[0]["idle"]["processes_mb"],
                         "peak_mb": median([s["peak_mb"] for s in ss]),
                         "idle_health": {k: median([s["idle_health"][k] for s in ss]) for k in ("p50_ms", "p99_ms")},
                         "health_c1_p50_ms": median([s["health_c1"]["p50_ms"] for s in ss if s.get("health_c1")]
                                                    or [None])}
    return servers


def summarize_overload(runs):
    loads = [r["overload"] for r in runs if r.get("overload")]
    if not loads:
        return None
    overload = dict(loads[0])
    for k in ("idle_mb", "queue_budget_mb"):
        overload[k] = median([x[k] for x in loads])
    for name in OVERLOAD_LOADS:
        parts = [x[name] for x in loads if x.get(name)]
        if parts:
            overload[name] = {k: median([x[k] for x in parts if x.get(k) is not None])
                              if any(x.get(k) is not None for x in parts) else None for k in OVERLOAD_FIELDS}
    return overload


def summarize_pairs(runs, mids):
    pairs = {}
    for mid in mids:
        rounds = [(i, x) for i, r in enumerate(runs) for x in (r.get("pairs") or {}).get(mid, [])]
        if rounds:
            per_run = [median([x["ratio"] for j, x in rounds if j == i]) for i in sorted({i for i, _ in rounds})]
            utils = [x["utilisation"] for _, x in rounds if x["utilisation"] is not None]
            steady = [x["steady_busy"] for _, x in rounds if x.get("steady_busy") is not None]
            pairs[mid] = {"ratio": median(per_run), "ratios": [x["ratio"] for _, x in rounds],
                          "steady_busy": median(steady) if steady else None,
                          "steady_busy_range": [min(steady), max(steady)] if steady else None,
                          "raw_rps": median([x["raw_rps"] for _, x in rounds]),
                          "rps": median([x["rps"] for _, x in rounds]), "busy": sum(x["busy"] for _, x in rounds),
                          "utilisation": median(utils) if utils else None,
                          "concurrency": rounds[0][1]["concurrency"], "client": rounds[0][1]["client"],
                          "rate": rounds[0][1].get("rate"), "window_ratio": median(
                              [x["window_rps"] / x["raw_rps"] for _, x in rounds if x.get("window_rps")] or [None]),
                          "health": pooled_health([x.get("health_ms") or [] for _, x in rounds]),
                          "cpu_ms_per_answer": {side: median([(x.get("cpu_ms_per_answer") or {}).get(side)
                                                              for _, x in rounds]) for side in ("http", "worker")}}
    return pairs


def pooled_health(lists):
    """/api/health latency over every sample of every round (a p99 per round of a few hundred
    samples would be its worst few)."""
    lat = sorted(x for xs in lists for x in xs)
    return {"n": len(lat), "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99),
            "max_ms": lat[-1] if lat else None} if lat else None


def summarize_raw_against_raw(runs, mids):
    floor = {}
    for mid in mids:
        per_run = [r["raw_against_raw"][mid] for r in runs if mid in (r.get("raw_against_raw") or {})]
        if per_run:
            floor[mid] = {"ratio": median([median(x) for x in per_run]), "ratios": [x for r in per_run for x in r],
                          "per_run": [median(x) for x in per_run]}
    return floor
