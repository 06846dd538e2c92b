"""edgeapp.history: the bounded ring of figures behind the page's plots, and what feeds it (each
model's runs from the Engine, the 503s from the answers)."""
import random

from edgeapp import history
from edgeapp.headers import AnswerHeaders
from edgeapp.history import History

GAUGES = {"state": "ready", "queue_depth": 1, "queue_capacity": 4}


def test_a_sample_holds_its_period_and_the_gauges_at_its_end():
    h = History(lambda: dict(GAUGES), period=2.0)
    for ms in (10, 20, 30, 40):
        h.model_run(3, ms / 1000.0, True)
    h.model_run(3, 0.5, False)  # an error: counted, not a latency
    h.refused()
    h.sample(now=100.0)
    h.sample(now=102.0)  # nothing happened: the counts start again at 0
    samples = h.since()["samples"]
    assert samples[0] == dict(GAUGES, t=100.0, refused=1,
                              models={"3": {"requests": 5, "errors": 1, "p50": 30.0, "p95": 40.0}})
    assert samples[1] == dict(GAUGES, t=102.0, refused=0, models={})
    assert [s["t"] for s in h.since(100.0)["samples"]] == [102.0]


def test_memory_is_bounded_in_samples_and_latencies():
    runs, rng = history.Runs(), random.Random(1)
    for i in range(history.LATENCIES_KEPT * 4):
        runs.add(float(i % 100), True, rng)
    assert runs.requests == history.LATENCIES_KEPT * 4 and len(runs.latencies) == history.LATENCIES_KEPT
    assert 40 <= runs.figures()["p50"] <= 60  # a uniform sample of 0..99 ms
    h = History(dict, keep=5)
    h.model_run(1, 0.01, True)
    for t in range(12):
        h.sample(now=float(t))
    kept = h.since()["samples"]
    assert [s["t"] for s in kept] == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert kept[0]["models"] == {}


def test_tick_takes_one_sample_per_period_and_never_makes_up_missed_ones():
    h = History(dict, period=2.0, start=998.0)
    due = 1000.0
    h.tick(due - 0.1)
    assert h.since()["samples"] == []
    h.tick(due)
    h.tick(due + 0.5)
    assert len(h.since()["samples"]) == 1
    h.tick(due + 30)  # the loop was held up (a reload): one sample, and the next is a period later
    h.tick(due + 31)
    h.tick(due + 32)
    assert [s["t"] for s in h.since()["samples"]] == [due, due + 30, due + 32]


def test_a_failing_sample_never_stops_the_ticks(caplog):
    def broken():
        raise OSError("no /proc")

    h = History(broken, period=2.0, start=0.0)
    for now in (2.0, 4.0, 6.0):
        h.tick(now)  # never raises into the service's main loop
    assert h.since()["samples"] == [] and caplog.text.count("failed") == 1


def test_every_answer_is_told_to_the_api():
    """AnswerHeaders tells Api.answered each status line (the 503s are counted from it); the ones the
    HTTP server gives by itself are counted in tests/test_service.py's door and line tests."""
    seen = []

    def app(environ, start_response):
        start_response(environ["status"], [("Content-Type", "application/json")])
        return [b"{}"]

    outer = AnswerHeaders(app, on_status=seen.append)
    for status in ("200 OK", "503 Service Unavailable", "401 Unauthorized"):
        outer({"status": status}, lambda s, h, e=None: None)
    assert seen == ["200 OK", "503 Service Unavailable", "401 Unauthorized"]
