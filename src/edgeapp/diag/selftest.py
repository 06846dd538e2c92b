"""`edgeapp-diag selftest`: every model on the sample image in its bundle, checked against the
result the bundle expects:

    "sample": {"image": "sample.png", "expect": ["text", "text"]}

`expect` lists the labels of the results (any order). The sample goes through the running service
when it is ready (the way a client's image goes); in this process when the service is down. A
starting or hung service is reported, not bypassed: the accelerator (on FPGA boards, the device)
and the memory belong to it.
"""
import time

from edgeapp.bundle import BundleError, load_bundles
from edgeapp.diag.client import HEALTH_TIMEOUT, ServiceClient
from edgeapp.diag.console import field, table_row, to_ascii
from edgeapp.errors import EdgeError


def run(settings, in_process=False):
    """(lines to print, True if every sample gave the expected result)."""
    try:
        bundles = load_bundles(settings.model_dir)
    except BundleError as e:
        return field("selftest", "ERROR %s" % e), False
    checker, how = choose_checker(ServiceClient.for_settings(settings), bundles, settings, in_process)
    if checker is None:
        return field("selftest", "ERROR the service is not ready: %s. Try again when edgeapp-diag says "
                     "READY, or stop it and use --in-process." % how), False
    lines = field("selftest", "%d model(s) in %s, %s" % (len(bundles), settings.model_dir, how))
    ok, ran = True, 0
    for mid, bundle in sorted(bundles.items()):
        row, checked, passed = check_sample(mid, bundle, checker)
        lines += row
        ran += checked
        ok = ok and passed
    ok = ok and ran > 0
    lines.append("%s: %d sample(s) checked" % ("PASS" if ok else "FAIL", ran))
    return lines, ok


def choose_checker(client, bundles, settings, in_process):
    """(checker, how the samples go): through a ready service, or here when it is down (or asked);
    (None, why not) when it runs but is not ready."""
    health = client.health(HEALTH_TIMEOUT)
    if in_process or health.error and not health.timed_out:
        how = "in this process (%s)" % ("asked for" if in_process else "the service is down")
        return InProcessChecker.load(bundles, settings), how
    if health.status == 200:
        return ServiceChecker(client, settings.request_timeout + 5), "through the service on port %d" % client.port
    return None, ("it gave no answer in %.1f s (hung?)" % HEALTH_TIMEOUT if health.timed_out
                  else health.msg or "HTTP %s" % health.status)


def check_sample(mid, bundle, checker):
    """(lines, 1 if the sample ran else 0, False if it failed) for one bundle."""
    sample = bundle.spec.get("sample") or {}
    head = "  %3d %-16s " % (mid, to_ascii(bundle.name)[:16])
    if not sample.get("image"):
        return [head + "SKIP   no sample image in the bundle"], 0, True
    try:
        with open(bundle.file(sample["image"]), "rb") as f:
            data = f.read()
    except OSError as e:
        return table_row(head, "FAIL   cannot read the sample: %s" % e), 0, False
    t0 = time.monotonic()
    got, error = checker.labels(mid, data)
    took = time.monotonic() - t0
    expect = [str(x) for x in sample.get("expect", [])]
    if error is None and sorted(got) == sorted(expect):
        return table_row(head, "PASS   %s (%.2f s)" % (_labels(got), took)), 1, True
    why = error or "expected %s, got %s" % (_labels(expect), _labels(got))
    return table_row(head, "FAIL   " + why), 1, False


def _labels(labels):
    return "[%s]" % ", ".join(repr(x) for x in labels) if labels else "no result"


def _result_labels(status, data, msg=""):
    """(labels, None) from an EdgeBoard answer, or ([], why it is not one)."""
    if status != 200 or not isinstance(data, dict):
        return [], "HTTP %s: %s" % (status, msg or "not the EdgeBoard envelope")
    return [str(r.get("label")) for r in data.get("result", [])], None


class ServiceChecker:
    """Samples through the running service, as a client's image goes."""

    def __init__(self, client, timeout):
        self.client, self.timeout = client, timeout

    def labels(self, mid, data):
        """(labels of the results, None) or ([], what went wrong)."""
        ans = self.client.post("/api/model/service/binary?mid=%d" % mid, data, self.timeout)
        if ans.error:
            return [], "no answer: %s" % ans.error
        return _result_labels(ans.status, ans.data, ans.msg)


class InProcessChecker:
    """Samples through the models loaded in this process (the service is down, or asked for)."""

    def __init__(self, engine, settings, error=None):
        self.engine, self.settings, self.error = engine, settings, error

    @classmethod
    def load(cls, bundles, settings):
        """Load every model here; any problem (e.g. no Paddle Lite on this python) becomes the answer."""
        try:
            from edgeapp import engines
            from edgeapp.accelerator import LocalAccelerator
            from edgeapp.engine import Engine

            accel = LocalAccelerator(bundles, engines.from_config(settings), warm=False)
            return cls(Engine(bundles, accel, reduce=settings.reduced_decode == "on"), settings)
        except Exception as e:  # ImportError for a missing runtime, or the runtime self-check
            return cls(None, settings, "cannot run models in this process: %s: %s" % (e.__class__.__name__, e))

    def labels(self, mid, data):
        """(labels of the results, None) or ([], what went wrong)."""
        if self.error:
            return [], self.error
        try:
            image, size = self.engine.decode(data, self.settings.max_pixels, [mid])
            out = self.engine.infer(mid, image, size=size)
        except EdgeError as e:
            return [], e.msg
        except Exception as e:
            return [], "%s: %s" % (e.__class__.__name__, e)
        return _result_labels(200, out)
