"""Models by id, run against an Accelerator: image in, EdgeBoard result list out.

Used by the CLI and the HTTP layer alike, so both return exactly the same JSON.
"""
import base64
import collections
import threading
import time

from edgeapp import images, models, render
from edgeapp.errors import UnknownModel
from edgeapp.results import rescale


class Engine:
    def __init__(self, bundles, accel, reduce=True, gallery=None):
        """reduce: decode() may decode JPEGs smaller for models with small inputs.
        gallery: the face gallery (edgeapp.facedb.FaceGallery) that face_rec models name faces from."""
        self.accel = accel
        self.gallery = gallery
        self.reduce = reduce
        self._stats_lock = threading.Lock()
        self._stats = {}
        self.on_run = None  # on_run(mid, seconds, ok) after each model's run: the page's history
        self.bundles, self.models, self.failed = {}, {}, {}
        self.reload(bundles)

    def reload(self, bundles):
        """Build the model objects for `bundles` against what the accelerator has loaded.

        The new tables replace the old ones in one step each, so a request sees either the old
        set or the new one; per-model statistics of models that stay are kept."""
        status = self.accel.model_status()
        ready, failed = {}, {}
        for mid, b in sorted(bundles.items()):
            try:
                m = models.build(b, bundles, self.gallery)
            except Exception as e:
                failed[mid] = "bundle error: %s" % e
                continue
            down = [n for n in m.needs() if not status.get(n, {}).get("ready")]
            if down:
                reasons = [(n, status.get(n, {}).get("reason") or "not loaded") for n in down]
                failed[mid] = "; ".join(
                    why if n == mid else "needs model %d (%s), which is not ready: %s" % (n, bundles[n].name, why)
                    for n, why in reasons)
                continue
            ready[mid] = m
        with self._stats_lock:
            self._stats = {mid: self._stats.get(mid) or _Stats() for mid in bundles}
        self.bundles, self.models, self.failed = dict(bundles), ready, failed

    def model(self, mid):
        m = self.models.get(mid)
        if m is None:
            if mid in self.failed:
                raise UnknownModel("model %d (%s) is not available: %s" % (mid, self.bundles[mid].name, self.failed[mid]))
            raise UnknownModel("no model with id %s; installed: %s (see GET /api/models)"
                               % (mid, ", ".join(str(i) for i in sorted(self.bundles)) or "none"))
        return m

    def decode(self, data, max_pixels, mids, full=False):
        """images.decode_reduced() as small as every model in mids allows (full size if `full`:
        a rendered result image is drawn on the full image). Returns (image, full (width, height)),
        which infer() takes as its `size`."""
        def reduction(w, h):
            if full or not self.reduce:
                return 1
            return min(self._reduction(mid, w, h) for mid in mids) if mids else 1
        return images.decode_reduced(data, max_pixels, reduction)

    def _reduction(self, mid, w, h):
        m = self.models.get(mid)
        return 1 if m is None else m.reduction(w, h)  # None: infer() will answer why

    def infer(self, mid, image, show=False, deadline=None, timing=None, size=None, reservation=None):
        """The envelope's data for one model: {"result": [...]} plus "image" (base64 JPEG) if show.

        size: the full image's (width, height) when `image` was decoded smaller (decode()): the
        results are given in full-size pixels.
        deadline (time.monotonic()): accelerator work not started by then is dropped (Timeout).
        timing: a dict to which this call adds milliseconds: queue, inference, preprocess,
        postprocess and render (for the Server-Timing header).
        reservation: the request's accel.reserve(), spent by its first accelerator run.
        Raises EdgeError subclasses only for what the client should hear about.
        """
        timing = {} if timing is None else timing
        results = self._run(mid, lambda model, accel: model.infer(image, accel), deadline, timing, reservation)
        ih, iw = image.shape[:2]
        if size is not None and tuple(size) != (iw, ih):
            if show:
                raise ValueError("a rendered image needs the full-size decode (Engine.decode(full=True))")
            rescale(results, size[0] / float(iw), size[1] / float(ih))
        data = {"result": results}
        if show:
            t1 = time.monotonic()
            data["image"] = base64.b64encode(render.to_jpeg(render.draw(image, results))).decode("ascii")
            _add(timing, "render", t1)
        return data

    def faces(self, mid, image, deadline=None, timing=None, reservation=None):
        """The Face records (box, score, unit vector; biggest first) of a face_rec model, for
        registering and matching faces; deadline, timing and reservation as for infer(). A
        face_rec model has no fit (its crops need every pixel), so decode() never reduces its
        image: the boxes are in the picture's own pixels."""
        timing = {} if timing is None else timing
        return self._run(mid, lambda model, accel: model.faces(image, accel), deadline, timing, reservation)

    def _run(self, mid, work, deadline, timing, reservation):
        """work(model, accel) for model mid against this request's view of the accelerator."""
        model = self.model(mid)
        accel = _RequestAccel(self.accel, deadline, timing, reservation)
        t0 = time.monotonic()
        ok = False
        try:
            out = work(model, accel)
            ok = True
        finally:
            accel.done()
            self._record(mid, time.monotonic() - t0, ok)
        return out

    def _record(self, mid, seconds, ok):
        with self._stats_lock:
            st = self._stats.get(mid)
            if st is not None:
                st.add(seconds, ok)
        if self.on_run is not None:
            self.on_run(mid, seconds, ok)

    def stats(self):
        """Per model: requests, errors and latency percentiles (ms) over the recent requests."""
        with self._stats_lock:
            return {mid: st.summary() for mid, st in self._stats.items()}

    def describe(self):
        status = self.accel.model_status()
        out = []
        for mid, b in sorted(self.bundles.items()):
            d = b.describe()
            d["ready"] = mid in self.models
            d["reason"] = self.failed.get(mid)
            d["memory_mb"] = status.get(mid, {}).get("memory_mb")
            d["engine"] = status.get(mid, {}).get("engine")  # None: a pipeline of other models
            out.append(d)
        return out


class _RequestAccel:
    """The accelerator as one request sees it: every run carries the request's deadline and its
    reservation, and the time around the runs is booked as preprocess (before each run) or
    postprocess (after the last)."""

    def __init__(self, accel, deadline, timing, reservation=None):
        self._accel = accel
        self._deadline = deadline
        self._timing = timing
        self._reservation = reservation
        self._mark = time.monotonic()

    def run(self, mid, inputs):
        _add(self._timing, "preprocess", self._mark)
        try:
            return self._accel.run(mid, inputs, deadline=self._deadline, timing=self._timing,
                                   reservation=self._reservation)
        finally:
            self._mark = time.monotonic()

    def done(self):
        _add(self._timing, "postprocess", self._mark)


def _add(timing, name, since):
    timing[name] = timing.get(name, 0.0) + (time.monotonic() - since) * 1000.0


class _Stats:
    WINDOW = 512  # recent latencies kept per model: bounded memory

    def __init__(self):
        self.requests = 0
        self.errors = 0
        self.latencies = collections.deque(maxlen=self.WINDOW)

    def add(self, seconds, ok):
        self.requests += 1
        if ok:
            self.latencies.append(seconds * 1000.0)
        else:
            self.errors += 1

    def summary(self):
        lat = sorted(self.latencies)

        def pct(p):
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None

        return {"requests": self.requests, "errors": self.errors,
                "latency_ms": {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99)}}
