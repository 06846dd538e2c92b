"""The service's figures read when they are asked for: the accelerator's status as /api/status and
/api/health document it, and the gauge families GET /metrics adds to the request counters
(queue, models, memory, restarts, callbacks), as (name, help, type, samples) for Metrics.render."""
from edgeapp.memory import rss_bytes


def accel_status(accel):
    """accel.status() with every key /api/status documents (an in-process accelerator has no queue)."""
    st = {"state": "ready", "worker_pid": None, "restarts": 0, "queue_depth": 0, "queue_capacity": None}
    st.update(accel.status() or {})
    return st


def gauges(engine, accel, in_flight, callbacks):
    """Figures read at scrape time, as (name, help, type, samples) for Metrics.render."""
    st = accel_status(accel)
    g = [
        ("edgeapp_queue_depth", "Inference jobs in flight on the accelerator.", "gauge", [({}, st["queue_depth"])]),
        ("edgeapp_queue_capacity", "Accelerator slots (the queue bound).", "gauge", [({}, st["queue_capacity"])]),
        ("edgeapp_requests_in_flight", "Inference requests being served.", "gauge", [({}, in_flight.value)]),
        ("edgeapp_worker_restarts_total", "Accelerator worker restarts.", "counter", [({}, st["restarts"])]),
        ("edgeapp_worker_watchdog_kills_total", "Hung workers killed by the watchdog.", "counter",
         [({}, st.get("watchdog_kills", 0))]),
    ]
    g += _model_gauges(engine, accel)
    g.append(_rss_gauge(st.get("worker_pid")))
    if callbacks is not None:
        cs = callbacks.stats()
        g.append(("edgeapp_callbacks_total", "Result callbacks by outcome.", "counter",
                  [({"outcome": k}, cs[k]) for k in ("sent", "dropped", "failed")]))
    return g


def _model_gauges(engine, accel):
    mstat = accel.model_status()
    return [
        ("edgeapp_model_ready", "1 if the model serves.", "gauge",
         [({"model": str(m), "name": b.name}, 1 if m in engine.models else 0) for m, b in sorted(engine.bundles.items())]),
        ("edgeapp_model_memory_bytes", "Memory the model pinned after warm-up.", "gauge",
         [({"model": str(m)}, int(s["memory_mb"] * 1048576)) for m, s in sorted(mstat.items())
          if s.get("memory_mb") is not None]),
        ("edgeapp_accelerator_seconds_total", "The accelerator's own time in runs of the model (its rate is the "
         "utilisation).", "counter",
         [({"model": str(m)}, t["accelerator_s_total"]) for m, t in sorted(accel.model_timing().items())]),
    ]


def _rss_gauge(worker_pid):
    return ("edgeapp_process_resident_memory_bytes", "RSS of the edgeapp processes.", "gauge",
            [({"process": "http"}, rss_bytes())] + ([({"process": "worker"}, rss_bytes(worker_pid))]
                                                    if worker_pid else []))
