"""pytest-benchmark: the hand-over to the accelerator process, against the raw predictor run.

Both run the text-direction model (mid 2, ~2 ms) on the same tensor, in one session, so their
ratio is what the worker process costs per job: the tensor into a shared-memory slot, the job
message, the worker's wake-up, its reply, the reader thread's hand-back, the outputs copied out.
extra_info carries this process's CPU time per job (what the HTTP process pays).
`make bench` times them; `make test` runs each once as a plain test.
"""
import os
import time

import numpy as np
import pytest

from edgeapp.bundle import load_bundles
from edgeapp.worker import WorkerAccelerator
from support import MODEL_DIR

MID = 2


@pytest.fixture(scope="module")
def tensor():
    b = load_bundles(MODEL_DIR)[MID]
    return np.random.RandomState(3).rand(*b.input_shape).astype(np.float32)


@pytest.fixture(scope="module")
def worker():
    """As the server splits the CPUs (EDGEAPP_WORKER_CPUS=1): the worker on the last CPU, this
    process on the others."""
    cpus = sorted(os.sched_getaffinity(0))
    split = len(cpus) > 1
    acc = WorkerAccelerator({MID: load_bundles(MODEL_DIR)[MID]}, slots=2, job_timeout=20.0,
                            cpus={cpus[-1]} if split else None)
    acc.start()
    if split:
        os.sched_setaffinity(0, cpus[:-1])
    yield acc
    acc.stop()
    os.sched_setaffinity(0, cpus)


def _cpu_ms_per_call(fn, n=500):
    """This process's CPU time per call (the worker's own time is not in it)."""
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) * 1000.0 / n


@pytest.mark.benchmark(group="hand-over")
def test_bench_raw_predictor_run(benchmark, worker, local_engine, tensor):
    # `worker` is here for its CPU split: this process runs on the CPUs the worker does not use.
    run = lambda: local_engine.accel.run(MID, [tensor])  # noqa: E731
    outs = benchmark(run)
    assert outs[0].shape[0] == 1


@pytest.mark.benchmark(group="hand-over")
def test_bench_worker_run_with_hand_over(benchmark, worker, tensor):
    run = lambda: worker.run(MID, [tensor])  # noqa: E731
    for _ in range(20):
        run()
    if not benchmark.disabled:
        benchmark.extra_info["http_process_cpu_ms_per_job"] = round(_cpu_ms_per_call(run), 3)
    timing = {}
    outs = benchmark(lambda: worker.run(MID, [tensor], timing=timing))
    assert outs[0].shape[0] == 1
    assert timing["inference"] > 0
