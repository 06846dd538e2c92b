"""`python -m tools.bench [options]`: the benchmark (tools.bench.run); `python -m tools.bench engines ...`:
every model on both engines, short (tools.bench.engines); `python -m tools.bench raw|load|chart ...`: one
of its internal modes, which the benchmark runs in subprocesses. Each mode imports only
what it needs: the load clients must start quickly, and the chart runs where only matplotlib is."""
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    mode = argv[0] if argv else None
    if mode == "raw":
        from tools.bench.raw import main as run_mode
    elif mode == "load":
        from tools.bench.clients import main as run_mode
    elif mode == "chart":
        from tools.bench.chart import main as run_mode
    elif mode == "engines":
        from tools.bench.engines import main as run_mode
    else:
        from tools.bench.run import main as run_benchmark

        return run_benchmark(argv)
    return run_mode(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
