"""Reading the answers of a load: Server-Timing phases, and the steady rate and accelerator share
between the first and the last answer (the figures of slow models' paired rounds)."""
import statistics


def steady_rate(done):
    """Answers per second between the first and the last answer (times in seconds): n - 1 answers
    in that time, as the raw loop's rate is taken (it ends with a run). A slow model's partial
    last interval in a fixed window would count against it: one 0.5 s run in 6 s is 8%."""
    done = sorted(done)
    return (len(done) - 1) / (done[-1] - done[0]) if len(done) >= 3 and done[-1] > done[0] else None


def steady_busy(answers):
    """(answer time s, its Server-Timing inference ms) pairs -> the share of the time from the
    first to the last answer that the accelerator spent on the answers after the first. Inference
    is the worker's tensors in, run and tensors out, what the raw loop times, so a host that slows
    down slows both sides: about 1.0 means the accelerator never waited for work."""
    answers = sorted((t, ms) for t, ms in answers if ms is not None)
    if len(answers) < 3 or answers[-1][0] <= answers[0][0]:
        return None
    return sum(ms for _, ms in answers[1:]) / 1000.0 / (answers[-1][0] - answers[0][0])


def timing_ms(header, phase):
    """One phase's milliseconds from a Server-Timing header, None when absent."""
    return timing_phases(header).get(phase)


def timing_phases(header):
    """{phase: milliseconds} of one Server-Timing header ("decode;dur=2.10, inference;dur=1.70")."""
    phases = {}
    for part in (header or "").split(","):
        name, _, params = part.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                try:
                    phases[name] = float(value)
                except ValueError:
                    pass
    return phases


def server_timing(headers):
    """Median of each Server-Timing phase over the answers that carry one; None when the server
    sends no such header."""
    phases = {}
    for h in headers:
        for name, ms in timing_phases(h).items():
            phases.setdefault(name, []).append(ms)
    return {name: statistics.median(v) for name, v in phases.items()} or None
