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
from edgeapp.diag import HEALTH_TIMEOUT, Answer, _local_host, _request, ascii, field, wrap


def run(settings, in_process=False):
    """(lines to print, True if every sample gave the expected result)."""
    try:
        bundles = load_bundles(settings.model_dir)
    except BundleError as e:
        return field("selftest", "ERROR %s" % e), False
    host, port = _local_host(settings), settings.port
    health = _request(host, port, "GET", "/api/health", HEALTH_TIMEOUT)
    if in_process or health.error and not health.timed_out:
        how = "in this process (%s)" % ("asked for" if in_process else "the service is down")
        check = _in_process(bundles, settings)
    elif health.status == 200:
        how = "through the service on port %d" % port
        check = _via_service(host, port, settings)
    else:
        why = ("it gave no answer in %.1f s (hung?)" % HEALTH_TIMEOUT if health.timed_out
               else health.msg or "HTTP %s" % health.status)
        return field("selftest", "ERROR the service is not ready: %s. Try again when edgeapp-diag says "
                     "READY, or stop it and use --in-process." % why), False
    lines = field("selftest", "%d model(s) in %s, %s" % (len(bundles), settings.model_dir, how))
    ok, ran = True, 0
    for mid, b in sorted(bundles.items()):
        sample = b.spec.get("sample") or {}
        head = "  %3d %-16s " % (mid, ascii(b.name)[:16])
        if not sample.get("image"):
            lines.append(head + "SKIP   no sample image in the bundle")
            continue
        try:
            with open(b.file(sample["image"]), "rb") as f:
                data = f.read()
        except OSError as e:
            lines += wrap(head + "FAIL   cannot read the sample: %s" % e, "", len(head) + 7)
            ok = False
            continue
        t0 = time.monotonic()
        got, error = check(mid, data)
        took = time.monotonic() - t0
        ran += 1
        expect = [str(x) for x in sample.get("expect", [])]
        if error is None and sorted(got) == sorted(expect):
            lines += wrap(head + "PASS   %s (%.2f s)" % (_labels(got), took), "", len(head) + 7)
            continue
        ok = False
        why = error or "expected %s, got %s" % (_labels(expect), _labels(got))
        lines += wrap(head + "FAIL   " + why, "", len(head) + 7)
    ok = ok and ran > 0
    lines.append("%s: %d sample(s) checked" % ("PASS" if ok else "FAIL", ran))
    return lines, ok


def _labels(labels):
    return "[%s]" % ", ".join(repr(x) for x in labels) if labels else "no result"


def _via_service(host, port, settings):
    def check(mid, data):
        ans = _request(host, port, "POST", "/api/model/service/binary?mid=%d" % mid,
                       settings.request_timeout + 5, settings.token, body=data)
        return _result(ans)
    return check


def _result(ans):
    if ans.error:
        return [], "no answer: %s" % ans.error
    if ans.status != 200 or not isinstance(ans.data, dict):
        return [], "HTTP %s: %s" % (ans.status, ans.msg or "not the EdgeBoard envelope")
    return [str(r.get("label")) for r in ans.data.get("result", [])], None


def _in_process(bundles, settings):
    """Load every model here; any problem (e.g. no Paddle Lite on this python) becomes the answer."""
    try:
        from edgeapp.accelerator import LocalAccelerator
        from edgeapp.engine import Engine
        from edgeapp.errors import EdgeError

        engine = Engine(bundles, LocalAccelerator(bundles, threads=settings.lite_threads or None, warm=False),
                        reduce=getattr(settings, "reduced_decode", "on") == "on")
    except Exception as e:  # ImportError for a missing runtime, or the runtime self-check
        err = "cannot run models in this process: %s: %s" % (e.__class__.__name__, e)
        return lambda mid, data: ([], err)

    def check(mid, data):
        try:
            image, size = engine.decode(data, settings.max_pixels, [mid])
            out = engine.infer(mid, image, size=size)
        except EdgeError as e:
            return [], e.msg
        except Exception as e:
            return [], "%s: %s" % (e.__class__.__name__, e)
        return _result(Answer(200, {"data": out}))
    return check
