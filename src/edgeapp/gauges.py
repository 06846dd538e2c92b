"""The service's figures read when they are asked for: the accelerator's status as /api/status and
/api/health document it, and the gauge families GET /metrics adds to the request counters
(queue, models, memory, restarts, callbacks, the face database), as (name, help, type, samples)
for Metrics.render."""
from edgeapp.memory import rss_bytes


def accel_status(accel):
    """accel.status() with every key /api/status documents (an in-process accelerator has no queue)."""
    st = {"state": "ready", "worker_pid": None, "restarts": 0, "queue_depth": 0, "queue_capacity": None,
          "queue_line": 0}
    st.update(accel.status() or {})
    return st


def gauges(engine, accel, in_flight, callbacks):
    """Figures read at scrape time, as (name, help, type, samples) for Metrics.render."""
    st = accel_status(accel)
    g = [
        ("edgeapp_queue_depth", "Inference jobs in flight on the accelerator.", "gauge", [({}, st["queue_depth"])]),
        ("edgeapp_queue_capacity", "Accelerator slots (the queue bound).", "gauge", [({}, st["queue_capacity"])]),
        ("edgeapp_queue_line", "Requests waiting in line for an accelerator slot.", "gauge",
         [({}, st["queue_line"])]),
        ("edgeapp_requests_in_flight", "Inference requests being served.", "gauge", [({}, in_flight.value)]),
        ("edgeapp_worker_restarts_total", "Accelerator worker restarts.", "counter", [({}, st["restarts"])]),
        ("edgeapp_worker_watchdog_kills_total", "Hung workers killed by the watchdog.", "counter",
         [({}, st.get("watchdog_kills", 0))]),
    ]
    g += _model_gauges(engine, accel)
    g.append(_rss_gauge(st.get("worker_pid")))
    g += face_gauges(engine.gallery)
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
        ("edgeapp_model_engine", "1 for the engine that runs the model (paddlelite or onnxruntime).", "gauge",
         [({"model": str(m), "engine": s["engine"]}, 1) for m, s in sorted(mstat.items()) if s.get("engine")]),
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


def face_gauges(gallery):
    """The face database (gallery.status(), as /api/status's `faces`); none without a gallery.
    No labels: one database, one face model in use. While the file cannot be opened only
    edgeapp_face_db_ok (0) and the limit have a sample: the figures are unknown then, not 0."""
    if gallery is None:
        return []
    st = gallery.status()
    other = st.get("other_models") or {}
    figures = (
        ("edgeapp_face_db_ok", "1 if the face database is open and usable, 0 if it cannot be opened (see the log).",
         0 if "error" in st else 1),
        ("edgeapp_face_people", "People the face model in use can recognise.", st.get("users")),
        ("edgeapp_faces", "Faces (vectors) of the face model in use.", st.get("faces")),
        ("edgeapp_face_memory_bytes", "Memory of the face vectors held for matching.", st.get("memory_bytes")),
        ("edgeapp_face_people_limit", "People the face database may hold (EDGEAPP_FACE_MAX_USERS).",
         st.get("max_users")),
        ("edgeapp_faces_other_models", "Faces stored for other face models: kept, never matched.", other.get("faces")),
        ("edgeapp_face_people_to_register_again", "People with faces of other face models only (after a model "
         "change): not recognised until registered again.", other.get("users_total")),
    )
    return [(name, help_text, "gauge", [({}, value)]) for name, help_text, value in figures]
