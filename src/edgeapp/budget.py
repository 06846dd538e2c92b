"""The memory formula, checked against the board's budget before the service says it is ready.

    total = HTTP process + worker (runtime + every warmed model) + queue slots x slot size
            + bodies in flight (threads x max body)

The worker's figure is measured after warm-up at each model's (fixed) input shape, which is the
most Paddle Lite will ever hold (DESIGN.md, "Memory"); the other terms are their upper bounds.
"""
from edgeapp.memory import mb, rss_bytes


class OverBudget(Exception):
    pass


def figures(http_rss, worker_rss, slot_bytes, threads, max_body_bytes):
    """Each term of the formula and the total, in MB."""
    f = {
        "http_mb": mb(http_rss),
        "worker_mb": mb(worker_rss),
        "slots_mb": mb(slot_bytes),
        "bodies_mb": mb(threads * max_body_bytes),
    }
    f["total_mb"] = round(sum(f.values()), 1)
    return f


def measure(accel, settings):
    """The formula's figures now: this process, the worker (if any), and the configured bounds."""
    pid = getattr(accel, "pid", None)
    fig = figures(rss_bytes(), rss_bytes(pid) if pid else 0, getattr(accel, "shared_bytes", 0),
                  settings.threads, settings.max_body_bytes)
    fig["budget_mb"] = settings.memory_budget_mb or None
    return fig


def over_budget(budget_mb, fig, model_status, bundles):
    """None if the figures fit budget_mb (0 = no budget), else the refusal message.

    The message names every model with what it pinned, largest first, so a person can see what to
    drop, and says which settings move the other terms.
    """
    if not budget_mb or fig["total_mb"] <= budget_mb:
        return None
    models = sorted(((s.get("memory_mb") or 0.0, mid) for mid, s in model_status.items() if s.get("ready")),
                    reverse=True)
    listed = ", ".join("%d %s %.0f MB" % (mid, bundles[mid].name, m) for m, mid in models) or "none"
    biggest = ("model %d (%s, %.0f MB)" % (models[0][1], bundles[models[0][1]].name, models[0][0])
               if models else "no model")
    return ("memory budget exceeded: edgeapp needs %.0f MB, the budget is %.0f MB. "
            "Worker %.0f MB (models after warm-up: %s), HTTP process %.0f MB, queue slots %.0f MB, "
            "request bodies %.0f MB (threads x max_body_bytes). The largest is %s. Raise "
            "EDGEAPP_MEMORY_BUDGET_MB, remove a model from the model folder, or lower "
            "EDGEAPP_THREADS / EDGEAPP_MAX_BODY_BYTES / EDGEAPP_QUEUE_DEPTH."
            % (fig["total_mb"], budget_mb, fig["worker_mb"], listed, fig["http_mb"], fig["slots_mb"],
               fig["bodies_mb"], biggest))


def models_to_drop(budget_mb, fig, model_status):
    """For the 'drop' policy: models are kept in id order while they fit; the others are left out."""
    mem = {mid: (s.get("memory_mb") or 0.0) for mid, s in model_status.items() if s.get("ready")}
    room = budget_mb - (fig["total_mb"] - sum(mem.values()))
    drop = []
    for mid in sorted(mem):
        if mem[mid] <= room:
            room -= mem[mid]
        else:
            drop.append(mid)
    return drop
