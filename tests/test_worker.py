"""The accelerator worker process: real Paddle Lite behind shared-memory slots."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from edgeapp.bundle import load_bundles
from edgeapp.engine import Engine
from edgeapp.errors import AcceleratorFailed, Busy, Timeout
from edgeapp.worker import WorkerAccelerator
from support import MODEL_DIR, WORKER_ENGINE, engine_settings, server_env
from textimages import page, text_line

# The worker on the small models: `make test-arm` runs these on the emulated board too, but the ones
# marked not_arm (they need the OCR models, mids 1 and 3).
pytestmark = pytest.mark.arm



@pytest.fixture(scope="module")
def bundles():
    return load_bundles(MODEL_DIR)


@pytest.fixture(scope="module")
def worker(bundles):
    acc = WorkerAccelerator(bundles, slots=2, job_timeout=20.0, engine=WORKER_ENGINE)
    acc.start()
    yield acc
    acc.stop()


def _wait_ready(acc, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end and acc.status()["state"] != "ready":
        time.sleep(0.05)
    return acc.status()["state"] == "ready"


@pytest.mark.not_arm  # needs the OCR models (mids 1, 3)
def test_worker_serves_all_models_like_in_process(worker, bundles):
    engine = Engine(bundles, worker)
    img, _ = page([("HELLO WORLD", (60, 120))])
    assert [r["label"] for r in engine.infer(3, img)["result"]] == ["HELLO WORLD"]
    assert engine.infer(2, text_line("EdgeBoard"))["result"][0]["label"] == "0"
    st = worker.status()
    assert st["state"] == "ready" and st["queue_capacity"] == 2 and st["queue_depth"] == 0
    assert st["worker_pid"] != os.getpid()
    assert all(worker.model_status()[m]["ready"] for m in (1, 2, 3))


@pytest.mark.not_arm  # needs the OCR models (mids 1, 3)
def test_full_queue_is_an_immediate_busy_not_a_wait(worker, bundles):
    engine = Engine(bundles, worker)
    img, _ = page([("HELLO", (60, 120))])
    outcomes, lock = [], threading.Lock()

    def call():
        t0 = time.monotonic()
        try:
            engine.infer(1, img)
            r = "ok"
        except Busy as e:
            assert e.retry_after >= 1 and e.status == 503
            r = "busy"
        with lock:
            outcomes.append((r, time.monotonic() - t0))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == 6                       # nothing lost, nothing hung
    assert {r for r, _ in outcomes} == {"ok", "busy"}
    assert sum(r == "ok" for r, _ in outcomes) >= 2
    assert max(s for r, s in outcomes if r == "busy") < 0.5   # refused at once
    assert worker.status()["queue_depth"] == 0      # every slot came back


@pytest.mark.not_arm  # the x86 wheel's OpenMP runtime
def test_lite_threads_reach_the_worker_and_its_openmp_runtime(bundles):
    # The x86 wheel has no set_threads(): the setting must reach its OpenMP runtime (libiomp5),
    # whose worker threads would otherwise be there beside the accelerator loop.
    fast = {2: bundles[2]}
    acc = WorkerAccelerator(fast, slots=1, threads=1, job_timeout=20.0, engine=WORKER_ENGINE)
    acc.start()
    try:
        with open("/proc/%d/environ" % acc.pid, "rb") as f:
            assert b"OMP_NUM_THREADS=1" in f.read().split(b"\0")
        acc.run(2, [np.zeros(fast[2].input_shape, np.float32)])
        assert len(os.listdir("/proc/%d/task" % acc.pid)) == 1  # the loop alone: no OpenMP threads (3 without)
    finally:
        acc.stop()


@pytest.mark.not_arm  # needs the OCR models (mids 1, 3)
def test_short_jobs_wait_a_little_for_a_slot_long_ones_do_not(bundles):
    # One slot, 0.2 s of queue wait: the ~2 ms model waits its turn instead of a 503; the
    # 0.5 s model (longer than the wait) is refused at once, as before.
    acc = WorkerAccelerator(bundles, slots=1, job_timeout=20.0, queue_wait=0.2, engine=WORKER_ENGINE)
    acc.start()
    try:
        engine = Engine(bundles, acc)
        line = text_line("EdgeBoard")
        img, _ = page([("HELLO", (60, 120))])

        def burst(mid, image, n):
            outcomes, lock = [], threading.Lock()

            def call():
                t0 = time.monotonic()
                try:
                    engine.infer(mid, image)
                    r = "ok"
                except Busy:
                    r = "busy"
                with lock:
                    outcomes.append((r, time.monotonic() - t0))

            threads = [threading.Thread(target=call) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            return outcomes

        engine.infer(2, line)  # the service time the wait decision is based on
        fast = burst(2, line, 6)
        assert [r for r, _ in fast] == ["ok"] * 6, fast
        engine.infer(1, img)
        slow = burst(1, img, 4)
        assert {r for r, _ in slow} == {"ok", "busy"}, slow
        assert max(s for r, s in slow if r == "busy") < 0.15, slow  # not held for the wait
        assert acc.status()["queue_depth"] == 0
    finally:
        acc.stop()


def test_room_reserved_by_admitted_requests_counts_until_their_job_runs(bundles, monkeypatch):
    from edgeapp import slots

    fast = {2: bundles[2]}
    x = [np.zeros(fast[2].input_shape, np.float32)]
    acc = WorkerAccelerator(fast, slots=2, job_timeout=20.0, engine=WORKER_ENGINE)
    acc.start()
    try:
        assert not acc.refuses_now() and acc.refuses_now(waiting=2)  # two not started yet fill it
        a = acc.reserve()
        assert a is not None and acc.reserve(renew=a) is a  # one reservation per request, renewed
        assert not acc.refuses_now() and acc.refuses_now(waiting=1)
        b = acc.reserve()
        assert b is not None
        assert acc.refuses_now() and acc.reserve() is None  # the slots are free, but reserved
        assert isinstance(acc.run(2, x, reservation=a), list)  # a's reservation became its slot, which came back
        assert not acc.refuses_now() and acc.refuses_now(waiting=1)
        acc.release(b)  # b failed (a bad image): its place is free again
        assert not acc.refuses_now(waiting=1) and acc.reserve() is not None
        monkeypatch.setattr(slots, "RESERVATION_SECONDS", 0.05)
        time.sleep(0.1)  # c never came back (a stalled upload): its reservation lapses
        assert not acc.refuses_now(waiting=1)
        assert acc.status()["queue_depth"] == 0
    finally:
        acc.stop()


@pytest.mark.not_arm  # needs the OCR models (mids 1, 3)
def test_expired_deadline_is_dropped_before_the_accelerator(worker, bundles):
    engine = Engine(bundles, worker)
    img, _ = page([("HELLO", (60, 120))])
    with pytest.raises(Timeout) as e:
        engine.infer(1, img, deadline=time.monotonic() - 1)
    assert e.value.status == 504
    # A deadline that passes while queued behind a slow job: dropped, slot returned.
    blocker = threading.Thread(target=lambda: engine.infer(1, img))
    blocker.start()
    time.sleep(0.05)
    with pytest.raises(Timeout):
        engine.infer(1, img, deadline=time.monotonic() + 0.1)
    blocker.join(30)
    assert _wait_ready(worker)
    # Its slot comes back once the worker has skipped it.
    end = time.monotonic() + 2.0
    while worker.status()["queue_depth"] and time.monotonic() < end:
        time.sleep(0.05)
    assert worker.status()["queue_depth"] == 0


@pytest.mark.not_arm  # needs the OCR models (mids 1, 3)
def test_a_job_given_up_while_running_frees_its_slot_and_the_next_gets_its_own_answer(bundles):
    # One slot: the worker still runs the abandoned job, answers it into the slot later, and the
    # next job in that slot must read its own reply, not the late one.
    acc = WorkerAccelerator({m: bundles[m] for m in (1, 2)}, slots=1, job_timeout=20.0, engine=WORKER_ENGINE)
    acc.start()
    try:
        det = np.full(bundles[1].input_shape, 0.5, np.float32)
        cls = np.random.RandomState(7).rand(*bundles[2].input_shape).astype(np.float32)
        want = acc.run(2, [cls])
        acc.run(1, [det])  # timed, so that a slow job is judged long
        with pytest.raises(Timeout):
            acc.run(1, [det], deadline=time.monotonic() + 0.1)  # running when its requester gives up
        assert acc.status()["queue_depth"] == 1
        end = time.monotonic() + 5.0
        while acc.status()["queue_depth"] and time.monotonic() < end:
            time.sleep(0.05)
        assert acc.status()["queue_depth"] == 0  # freed once the worker answered it
        for _ in range(3):
            got = acc.run(2, [cls])
            assert [o.shape for o in got] == [o.shape for o in want]
            assert all(np.allclose(a, b) for a, b in zip(got, want))
    finally:
        acc.stop()


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_worker_polls_for_the_next_job_a_moment_then_sleeps(bundles):
    acc = WorkerAccelerator({2: bundles[2]}, slots=1, spin_ms=150, engine=WORKER_ENGINE)
    acc.start()
    try:
        x = np.full(bundles[2].input_shape, 0.5, np.float32)
        for _ in range(3):
            acc.run(2, [x])
            before = _cpu_seconds(acc.pid)
            time.sleep(1.0)
            used = _cpu_seconds(acc.pid) - before
            assert 0.03 <= used <= 0.4, used  # busy up to 150 ms after the job, then asleep
    finally:
        acc.stop()


def test_only_a_worker_on_cpus_of_its_own_polls(bundles):
    from edgeapp import config, server
    pinned = config.load(environ={"EDGEAPP_WORKER_CPUS": "1"})
    assert pinned.worker_spin_ms == 5
    assert server._make_accelerator(bundles, pinned).options.spin_ms == 5
    assert server._make_accelerator(bundles, config.load(environ={})).options.spin_ms == 0  # it would take HTTP's CPU
    off = config.load(environ={"EDGEAPP_WORKER_CPUS": "1", "EDGEAPP_WORKER_SPIN_MS": "0"})
    assert server._make_accelerator(bundles, off).options.spin_ms == 0


@pytest.mark.not_arm  # needs the OCR models (mids 1, 3)
def test_killed_worker_fails_in_flight_requests_then_comes_back(worker, bundles):
    engine = Engine(bundles, worker)
    img, _ = page([("HELLO", (60, 120))])
    pid = worker.status()["worker_pid"]
    restarts = worker.status()["restarts"]
    threading.Timer(0.2, os.kill, (pid, signal.SIGKILL)).start()
    t0 = time.monotonic()
    with pytest.raises(AcceleratorFailed) as e:
        engine.infer(1, img)
    assert time.monotonic() - t0 < 1.5            # answered promptly, not at the timeout
    assert "died" in e.value.msg
    assert _wait_ready(worker, 30)
    st = worker.status()
    assert st["restarts"] == restarts + 1 and st["worker_pid"] != pid
    assert engine.infer(2, text_line("HELLO"))["result"][0]["label"] == "0"


def test_worker_dies_with_its_parent(tmp_path):
    # A parent that starts a worker and is then killed -9: the worker must not outlive it.
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from edgeapp.bundle import load_bundles
        from edgeapp.worker import WorkerAccelerator
        b = load_bundles(sys.argv[1])
        b = {2: b[2]}                      # the small model: fast start
        acc = WorkerAccelerator(b, slots=1, engine=sys.argv[2])
        acc.start()
        print(acc.status()["worker_pid"], flush=True)
        time.sleep(60)
    """))
    p = subprocess.Popen([sys.executable, str(script), MODEL_DIR, WORKER_ENGINE], stdout=subprocess.PIPE, env=server_env())
    worker_pid = int(p.stdout.readline())
    assert os.path.exists("/proc/%d" % worker_pid)
    p.kill()
    p.wait()
    end = time.monotonic() + 5
    while time.monotonic() < end and _alive(worker_pid):
        time.sleep(0.05)
    assert not _alive(worker_pid)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.not_arm  # needs the OCR models (mids 1, 3)
def test_wrong_tensor_shape_never_reaches_paddle_lite(worker):
    with pytest.raises(ValueError):
        worker.run(1, [np.zeros((1, 3, 320, 320), np.float32)])


# What a corrupt model file does: Paddle Lite aborts the process that loads it; ONNX Runtime refuses it.
CORRUPT_MODEL_REASON = "crashed Paddle Lite" if WORKER_ENGINE == "paddlelite" else "INVALID_PROTOBUF"


@pytest.fixture()
def odd_models(tmp_path):
    """text-direction (fine), plus one bundle with a corrupt model file and one with none."""
    import json
    import shutil
    src = os.path.join(MODEL_DIR, "text-direction")
    for name, mid, model in (("text-direction", 2, None), ("broken", 7, b"\x00garbage" * 100), ("missing", 8, "")):
        dst = tmp_path / name
        shutil.copytree(src, str(dst))
        spec = json.loads((dst / "bundle.json").read_text())
        spec.update(id=mid, name=name)
        (dst / "bundle.json").write_text(json.dumps(spec))
        if model is not None:
            _replace_model_files(dst, model)
    return str(tmp_path)


def _replace_model_files(bundle_dir, model):
    """Every engine's model file of the bundle (model.nb, model.onnx) replaced by these bytes, or
    deleted when they are empty: whichever engine the test runs on meets the broken file."""
    for name in ("model.nb", "model.onnx"):
        path = bundle_dir / name
        if path.exists():
            path.unlink()
            if model:
                path.write_bytes(model)


def test_a_corrupt_or_missing_model_fails_alone(odd_models):
    # Paddle Lite aborts the process on a corrupt .nb: the worker is restarted without that model.
    bundles = load_bundles(odd_models)
    acc = WorkerAccelerator(bundles, slots=1, engine=WORKER_ENGINE)
    acc.start()
    try:
        st = acc.model_status()
        assert st[2]["ready"]
        assert not st[7]["ready"] and CORRUPT_MODEL_REASON in st[7]["reason"]
        assert not st[8]["ready"] and "missing" in st[8]["reason"]
        engine = Engine(bundles, acc)
        assert sorted(engine.models) == [2] and sorted(engine.failed) == [7, 8]
        assert engine.infer(2, text_line("HELLO"))["result"][0]["label"] == "0"
    finally:
        acc.stop()


def test_watchdog_kills_a_hung_worker(bundles):
    only_fast = {2: bundles[2]}
    acc = WorkerAccelerator(only_fast, slots=2, job_timeout=20.0, hang_timeout=1.0, engine=WORKER_ENGINE)
    acc.start()
    try:
        engine = Engine(only_fast, acc)
        pid = acc.status()["worker_pid"]
        os.kill(pid, signal.SIGSTOP)  # a hang: alive, answering nothing
        t0 = time.monotonic()
        with pytest.raises(AcceleratorFailed):
            engine.infer(2, text_line("HELLO"))
        assert time.monotonic() - t0 < 5.0
        assert _wait_ready(acc, 30)
        st = acc.status()
        assert st["watchdog_kills"] == 1 and st["restarts"] == 1 and st["worker_pid"] != pid
        assert st["last_exit_code"] == -signal.SIGKILL and st["deaths_last_minute"] == 1
        assert engine.infer(2, text_line("HELLO"))["result"][0]["label"] == "0"
    finally:
        acc.stop()


def _copy_bundle(src_dir, dst, mid, name, model=None):
    import json
    import shutil
    shutil.copytree(os.path.join(src_dir, "text-direction"), str(dst))
    spec = json.loads((dst / "bundle.json").read_text())
    spec.update(id=mid, name=name)
    (dst / "bundle.json").write_text(json.dumps(spec))
    if model is not None:
        _replace_model_files(dst, model)


def test_reload_adds_and_drops_models_without_losing_work(tmp_path):
    _copy_bundle(MODEL_DIR, tmp_path / "text-direction", 2, "text-direction")
    acc = WorkerAccelerator(load_bundles(str(tmp_path)), slots=2, engine=WORKER_ENGINE)
    acc.start()
    try:
        engine = Engine(acc.bundles, acc)
        line = text_line("HELLO")
        outcomes, stop = [], threading.Event()

        def keep_busy():  # requests in flight all through the reload
            end = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < end:
                try:
                    outcomes.append(engine.infer(2, line)["result"][0]["label"])
                except Busy:
                    outcomes.append("busy")
                time.sleep(0.005)

        t = threading.Thread(target=keep_busy)
        t.start()
        _copy_bundle(MODEL_DIR, tmp_path / "copy", 9, "direction-copy")
        _copy_bundle(MODEL_DIR, tmp_path / "broken", 7, "broken", model=b"\x00garbage" * 64)
        pid = acc.status()["worker_pid"]
        done = acc.reload(load_bundles(str(tmp_path)))
        stop.set()
        t.join(30)
        assert done["added"] == [9] and done["removed"] == [] and list(done["failed"]) == [7]
        assert CORRUPT_MODEL_REASON in done["failed"][7]
        assert acc.status()["worker_pid"] == pid and acc.status()["restarts"] == 0  # same worker
        assert outcomes and set(outcomes) <= {"0", "busy"} and "0" in outcomes
        engine = Engine(load_bundles(str(tmp_path)), acc)
        assert engine.infer(9, line)["result"][0]["label"] == "0"
        assert 7 in engine.failed and CORRUPT_MODEL_REASON in engine.failed[7]

        import shutil
        shutil.rmtree(str(tmp_path / "copy"))
        done = acc.reload(load_bundles(str(tmp_path)))
        assert done["removed"] == [9]
        engine = Engine(load_bundles(str(tmp_path)), acc)
        with pytest.raises(Exception):
            engine.infer(9, line)
        assert engine.infer(2, line)["result"][0]["label"] == "0"
    finally:
        acc.stop()


# ---- the process owner (worker_process.py): what a restart loads and warms ---------------------

def test_a_worker_loads_only_the_bundles_it_was_given(bundles):
    # Not every bundle the folder holds: a restart must bring back what the server serves.
    acc = WorkerAccelerator({2: bundles[2]}, slots=1, engine=WORKER_ENGINE)
    acc.start()
    try:
        assert sorted(acc.model_status()) == [2]
    finally:
        acc.stop()


def test_the_process_owner_on_its_own_runs_a_job_and_restarts_a_dead_worker(bundles):
    # WorkerProcess with no slot pool: the messages and the shared slots by hand.
    import queue

    from edgeapp import protocol
    from edgeapp.worker_process import LoadedModels, WorkerOptions, WorkerProcess

    b = bundles[2]
    replies, deaths = queue.Queue(), queue.Queue()
    owner = WorkerProcess(LoadedModels({2: b}), WorkerOptions(MODEL_DIR, server_env(), engine=WORKER_ENGINE), slots=1,
                          in_bytes=4 * int(np.prod(b.input_shape)), out_bytes=0, on_reply=replies.put, on_death=deaths.put,
                          busy_since=lambda: None)
    owner.start()
    try:
        assert owner.state == "ready" and sorted(owner.models.model_status()) == [2]
        x = np.full(b.input_shape, 0.5, np.float32)
        for job_id in (1, 2):
            shapes = owner.memory.put_inputs(0, [x])
            owner.channel.send(protocol.Run(job_id, 0, 2, shapes, None))
            done = replies.get(timeout=30)
            assert isinstance(done, protocol.Done) and done.job_id == job_id
            assert owner.memory.outputs(0, done.shapes)[0].shape == (1, 2)
            if job_id == 1:
                pid = owner.pid
                os.kill(pid, signal.SIGKILL)
                assert "died" in deaths.get(timeout=10)
                assert _wait_until(lambda: owner.state == "ready" and owner.pid != pid)
                assert owner.restarts == 1 and owner.last_exit == -signal.SIGKILL
    finally:
        owner.stop()
    assert "shutting down" in deaths.get(timeout=5) and owner.pid is None


def _wait_until(cond, seconds=30):
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.02)
    return cond()


@pytest.mark.not_arm  # needs the OCR models (mids 1, 3)
def test_a_restart_does_not_warm_again_what_the_first_start_measured(bundles):
    # The detector's warm-up (its first run allocates ~550 MB on x86) was most of a restart. A
    # restarted worker loads and checks it, keeps the first start's figures, and its first job
    # reaches the memory the warm-up measured: every tensor has the same fixed shape.
    from edgeapp.memory import rss_bytes

    det = {1: bundles[1]}
    acc = WorkerAccelerator(det, slots=1, job_timeout=60.0, engine=WORKER_ENGINE)
    acc.start()
    try:
        x = np.random.RandomState(3).rand(*det[1].input_shape).astype(np.float32)
        want = acc.run(1, [x])
        pid, warm_rss, figures = acc.pid, rss_bytes(acc.pid), acc.model_status()
        first_start = acc.status()["last_start_s"]
        os.kill(pid, signal.SIGKILL)
        end = time.monotonic() + 60
        while not (acc.status()["state"] == "ready" and acc.pid not in (None, pid)) and time.monotonic() < end:
            time.sleep(0.02)
        restart = acc.status()["last_start_s"]
        cold_rss = rss_bytes(acc.pid)
        print("\nfirst start %.2f s, %d MB; restart %.2f s, %d MB"
              % (first_start, warm_rss >> 20, restart, cold_rss >> 20))
        assert acc.model_status() == figures           # the measured figures, not a cold load's
        assert cold_rss < warm_rss / 2, (cold_rss, warm_rss)  # not warmed (549 MB vs ~80 MB measured)
        assert restart < first_start, (restart, first_start)
        got = acc.run(1, [x])
        assert all(np.allclose(a, b) for a, b in zip(got, want))
        assert rss_bytes(acc.pid) > 0.9 * warm_rss     # the first job took what the warm-up measured
    finally:
        acc.stop()


def test_a_restart_warms_a_model_whose_file_changed(tmp_path):
    from edgeapp import worker_main
    from edgeapp.protocol import digest
    from edgeapp.worker_process import LoadedModels

    _copy_bundle(MODEL_DIR, tmp_path / "text-direction", 2, "text-direction")
    b = load_bundles(str(tmp_path))
    models = LoadedModels(b)
    assert models.spawn_args() == ["--only", "2"]  # nothing known yet: everything is warmed
    warm = {"ready": True, "reason": None, "memory_mb": 1.5, "warmup_ms": 40.0}
    models.started({2: warm}, cold=[])
    warmed = models.spawn_args()[-1]
    assert models.spawn_args()[-2:] == ["--warmed", "2=%s" % digest(b[2])]
    assert worker_main.cold_models(b, warmed) == [2]
    # A restarted worker's own figures for a cold model are a load's, not a warm-up's.
    models.started({2: dict(warm, memory_mb=0.1, warmup_ms=3.0)}, cold=[2])
    assert models.model_status() == {2: warm}
    model = tmp_path / "text-direction" / "model.nb"
    st = model.stat()
    os.utime(str(model), ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))  # rebuilt in place
    assert worker_main.cold_models(load_bundles(str(tmp_path)), warmed) == []


# ---- the slot pool (slots.py): admission with no worker behind it ------------------------------

def test_pool_reservations_hold_room_until_spent_or_released():
    from edgeapp.slots import SlotPool

    pool = SlotPool(2)
    a, b = pool.reserve(), pool.reserve()
    assert a is not None and b is not None and a is not b
    assert pool.reserve() is None and pool.refuses_now()      # free slots, all reserved
    assert pool.reserve(renew=a) is a                        # a request's own room is its own
    job = pool.take(1, reservation=a)                        # a's room becomes a's slot
    assert job is not None and pool.in_use() == 1
    assert pool.take(1, reservation=a) is None               # spent: a's second job has no room (b's)
    pool.release(b)
    second = pool.take(1, reservation=a)
    assert second is not None and pool.in_use() == 2 and pool.refuses_now()
    for j in (job, second):
        pool.finish(j, shapes=[(1, 2)], run_ms=5.0)
        assert j.done.is_set() and j.shapes == [(1, 2)]
    assert pool.in_use() == 2                                # until the requesters copied their outputs
    pool.give_back(job)
    pool.give_back(second)
    assert pool.in_use() == 0 and pool.service_ms == 5.0 and not pool.refuses_now(waiting=1)


def test_pool_frees_the_slot_of_a_failed_or_abandoned_job_with_its_reply():
    from edgeapp.errors import Internal
    from edgeapp.slots import SlotPool

    pool = SlotPool(1)
    assert pool.busy_since() is None
    job = pool.take(1)
    assert pool.busy_since() is not None and pool.job(job.id) is job
    cancelled = []
    assert pool.abandon(job, cancelled.append) and cancelled == [job.slot]
    assert pool.in_use() == 1                                # the worker may be running it still
    pool.finish(job, Timeout("skipped"))
    assert pool.in_use() == 0 and pool.busy_since() is None and pool.job(job.id) is None
    job = pool.take(1)
    pool.finish(job, shapes=[(1,)], run_ms=1.0)
    assert not pool.abandon(job, cancelled.append)          # too late: its outputs are there
    pool.give_back(job)
    a = pool.take(1)
    pool.fail_all(lambda: Internal("gone"))
    assert isinstance(a.error, Internal) and a.done.is_set() and pool.in_use() == 0
    b = pool.take(2)
    pool.finish(b, Internal("it raised"))
    assert pool.in_use() == 0 and pool.service_ms == 1.0    # a failure is not a service time


def test_pool_waits_a_little_behind_a_short_job_not_behind_a_long_one():
    from edgeapp.slots import SlotPool

    pool = SlotPool(1, queue_wait=0.3)
    for mid, ms in ((2, 2.0), (1, 500.0)):
        j = pool.take(mid)
        pool.finish(j, shapes=[], run_ms=ms)
        pool.give_back(j)
    head = pool.take(2)  # a 2 ms job holds the only slot: the next one waits for it

    def done_soon():
        time.sleep(0.05)
        pool.finish(head, shapes=[], run_ms=2.0)
        pool.give_back(head)

    threading.Thread(target=done_soon).start()
    t0 = time.monotonic()
    waited = pool.take(2)
    assert waited is not None and time.monotonic() - t0 < 0.3
    pool.finish(waited, shapes=[], run_ms=2.0)
    pool.give_back(waited)
    long_head = pool.take(1)  # a 500 ms job: no point waiting behind it
    t0 = time.monotonic()
    assert pool.take(2) is None and pool.reserve() is None and pool.refuses_now()
    assert time.monotonic() - t0 < 0.1
    assert pool.retry_after() == 1
    pool.fail_all(lambda: Timeout("x"))
    assert long_head.done.is_set()


def _timed_pool(slots, queue_wait, ms):
    """A SlotPool whose model 1 is measured at `ms` a job."""
    from edgeapp.slots import SlotPool

    pool = SlotPool(slots, queue_wait=queue_wait)
    j = pool.take(1)
    pool.finish(j, shapes=[], run_ms=ms)
    pool.give_back(j)
    return pool


def _join_line(pool, outcomes, n):
    """Request n: a thread that takes a slot for model 1 (waiting in line if it may); returns once
    it is in line or has its answer."""
    before = pool.in_line()

    def take():
        job = pool.take(1)
        outcomes.append((n, job))

    t = threading.Thread(target=take, daemon=True)
    t.start()
    end = time.monotonic() + 10
    while pool.in_line() == before and not any(k == n for k, _ in outcomes) and time.monotonic() < end:
        time.sleep(0.001)
    return t


def _finish_oldest(pool, running, outcomes, ms):
    """The worker finishes the oldest job; its slot goes to the first in line, if any (whose job
    then runs)."""
    job = running.pop(0)
    served = len(outcomes)
    waiting = pool.in_line()
    pool.finish(job, shapes=[], run_ms=ms)
    pool.give_back(job)
    end = time.monotonic() + 10
    while waiting and len(outcomes) == served and time.monotonic() < end:
        time.sleep(0.001)
    if len(outcomes) > served:
        running.append(outcomes[-1][1])


def test_pool_serves_a_burst_in_line_first_come_first_served():
    # Two slots, 100 ms jobs, a queue wait of 2 s: three more requests wait in line (the last one's
    # predicted wait is 300 ms) and get the slots in the order they came, none refused.
    pool = _timed_pool(2, queue_wait=2.0, ms=100.0)
    running = [pool.take(1), pool.take(1)]
    outcomes = []
    threads = [_join_line(pool, outcomes, n) for n in range(3)]
    assert pool.in_line() == 3 and outcomes == []
    assert not pool.refuses_now()  # a fourth would wait too (400 ms predicted)
    while running:
        _finish_oldest(pool, running, outcomes, 100.0)
    for t in threads:
        t.join(10)
    assert [n for n, _ in outcomes] == [0, 1, 2] and all(job is not None for _, job in outcomes)
    assert pool.in_line() == 0 and pool.in_use() == 0


def test_pool_refuses_at_once_when_the_predicted_wait_is_longer_than_the_queue_wait():
    # One slot, 400 ms jobs, a queue wait of 1 s: the first two in line are predicted to wait 0.4 and
    # 0.8 s and wait; the third (1.2 s) is refused at once, told to come back in 2 s.
    pool = _timed_pool(1, queue_wait=1.0, ms=400.0)
    running = [pool.take(1)]
    outcomes = []
    threads = [_join_line(pool, outcomes, n) for n in range(2)]
    assert pool.in_line() == 2 and outcomes == []
    assert pool.refuses_now() and pool.retry_after() == 2
    t0 = time.monotonic()
    assert pool.take(1) is None and pool.reserve() is None  # no waiting: refused at once
    assert time.monotonic() - t0 < 0.5
    assert pool.in_line() == 2 and outcomes == []           # those in line keep their places
    while running:
        _finish_oldest(pool, running, outcomes, 400.0)
    for t in threads:
        t.join(10)
    assert [n for n, _ in outcomes] == [0, 1] and all(job is not None for _, job in outcomes)


def test_pool_refuses_at_once_while_the_worker_is_down():
    from edgeapp.slots import SlotPool

    up = [True]
    pool = SlotPool(1, queue_wait=5.0, ready=lambda: up[0])
    j = pool.take(2)
    pool.finish(j, shapes=[], run_ms=1.0)  # short: worth waiting for, while the worker is up
    up[0] = False
    t0 = time.monotonic()
    assert pool.take(2) is None and time.monotonic() - t0 < 0.1


def test_pool_reservations_lapse(monkeypatch):
    from edgeapp import slots

    pool = slots.SlotPool(1)
    stuck = pool.reserve()
    assert stuck is not None and pool.reserve() is None
    monkeypatch.setattr(slots, "RESERVATION_SECONDS", 0.05)
    time.sleep(0.1)  # a request stuck on a slow upload no longer holds the room
    assert pool.reserve() is not None
    assert pool.reserve(renew=stuck) is None  # and it must find room again, like any other


def test_an_in_process_accelerator_has_the_same_reservation_api(bundles):
    from edgeapp.accelerator import LocalAccelerator

    accel = LocalAccelerator({2: bundles[2]}, engine_settings())
    r = accel.reserve(time.monotonic() + 1)
    assert r is not None and accel.reserve(renew=r) is r and not accel.refuses_now(waiting=100)
    x = np.zeros(bundles[2].input_shape, np.float32)
    assert isinstance(accel.run(2, [x], reservation=r), list)
    accel.release(r)
    accel.release(None)


# ---- the protocol (protocol.py): named messages, one encoding, the shared slots ----------------

def test_every_message_round_trips_through_a_channel():
    import socket
    from multiprocessing.connection import Connection

    from edgeapp import protocol as p

    samples = [p.Loading(3), p.Fatal("numpy 2"), p.Ready(42, {1: {"ready": True}}, 4096, [1]),
               p.Attach(4, 1024, 512), p.Run(7, 2, 1, [(1, 3, 8, 8)], 123.5), p.Done(7, [(1, 2)], 1.5),
               p.Skipped(7), p.Failed(7, "boom"), p.Reload([1, 2], [3]), p.Reloaded({}, {1: 8}), p.Stop()]
    assert {type(m) for m in samples} == set(p.MESSAGES.values())
    a, b = socket.socketpair()
    left, right = p.Channel(Connection(a.detach())), p.Channel(Connection(b.detach()))
    try:
        for msg in samples:
            left.send(msg)
            got = right.recv()
            assert type(got) is type(msg) and got == msg
            assert p.decode(p.encode(msg)) == msg and type(p.encode(msg)[0]) is str  # plain data on the wire
    finally:
        left.close()
        right.close()
    # The rule the old tuples broke ("reloaded", None, ...): a job's messages name it first.
    assert all(cls._fields[0] == "job_id" for cls in (p.Run,) + p.JOB_REPLIES)
    assert "job_id" not in p.Reloaded._fields
    for bad in (("Nope", 1), ("Done", 1), ()):
        with pytest.raises(ValueError):
            p.decode(bad)


def test_slot_memory_is_shared_and_bounded():
    from edgeapp.protocol import Layout, SlotMemory

    parent = SlotMemory.create(Layout(2, 4 * 12, 4 * 6))
    child = SlotMemory.attach(parent.layout.attach_message(), parent.fd)  # as a worker maps it
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)
    shapes = parent.put_inputs(1, [x])
    assert shapes == [(1, 3, 2, 2)] and np.array_equal(child.inputs(1, shapes)[0], x)
    out = child.put_outputs(1, [np.full((2, 3), 7.0, np.float32)])
    assert np.array_equal(parent.outputs(1, out)[0], np.full((2, 3), 7.0))
    assert not child.cancelled(1) and not child.cancelled(0)
    parent.cancel(1)
    assert child.cancelled(1) and not child.cancelled(0)
    parent.put_inputs(1, [x])  # a new job in the slot clears the flag
    assert not child.cancelled(1)
    with pytest.raises(ValueError):
        parent.put_inputs(0, [np.zeros((1, 3, 4, 4), np.float32)])  # never past a slot's end
    os.close(parent.fd)
