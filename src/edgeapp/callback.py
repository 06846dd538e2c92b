"""Result callbacks: every inference result is also POSTed as JSON to a configured URL.

The EdgeBoard document's neighbour page ("HTTP结果回调") defines the fields; we fill those that
apply to an uploaded image. Delivery never slows inference: results go into a bounded queue (a full
queue drops the new result and counts it), one background thread posts them with retries and
back-off, and a receiver that is slow, down or answering errors only costs that thread's time.
"""
import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.request

log = logging.getLogger("edgeapp.callback")


def payload(model_id, results, width, height, image_b64=None, now=None):
    """The callback body for one model's results on one image (EdgeBoard's field names)."""
    body = {
        "task_type": "http_inference",
        "model_id": int(model_id),
        "time": str(int((now if now is not None else time.time()) * 1000)),
        "width": int(width),
        "height": int(height),
        "result_data": [_box(r, width, height) for r in results],
        "fence_data": [],
    }
    if image_b64:
        body["background"] = image_b64
    return body


def _box(r, width, height):
    loc = r["location"]
    x0, y0 = loc["left"] / float(width), loc["top"] / float(height)
    x1, y1 = (loc["left"] + loc["width"]) / float(width), (loc["top"] + loc["height"]) / float(height)
    clip = lambda v: min(1.0, max(0.0, v))  # noqa: E731
    return {"label_id": r["index"], "label_name": r["label"], "score": r["score"],
            "x0": clip(x0), "y0": clip(y0), "x1": clip(x1), "y1": clip(y1)}


class Callbacks:
    """A bounded queue of payloads and the thread that delivers them."""

    def __init__(self, url, queue_size=64, timeout=5.0, retries=3, backoff=0.5, token=None):
        self.url = url
        self._timeout = float(timeout)
        self._retries = int(retries)
        self._backoff = float(backoff)
        self._token = token
        self._queue = collections.deque()
        self._size = int(queue_size)
        self._cond = threading.Condition()
        self._stopping = False
        self.sent = 0
        self.dropped = 0      # queue full: never waited for
        self.failed = 0       # gave up after the retries
        self._thread = threading.Thread(target=self._run, name="callbacks", daemon=True)
        self._thread.start()

    def submit(self, body):
        """Queue one payload; returns at once. False (and counted) if the queue is full."""
        with self._cond:
            if len(self._queue) >= self._size:
                self.dropped += 1
                return False
            self._queue.append(body)
            self._cond.notify()
            return True

    def stats(self):
        with self._cond:
            return {"url_set": True, "queued": len(self._queue), "capacity": self._size,
                    "sent": self.sent, "dropped": self.dropped, "failed": self.failed}

    def stop(self, wait=2.0):
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(wait)

    def _run(self):
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                body = self._queue.popleft()
            self._deliver(json.dumps(body, ensure_ascii=False).encode("utf-8"))

    def _deliver(self, data):
        headers = {"Content-Type": "application/json", "User-Agent": "edgeapp-callback"}
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        delay = self._backoff
        for attempt in range(self._retries + 1):
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                    resp.read(1024)
                self.sent += 1
                return
            except (urllib.error.URLError, OSError, ValueError) as e:
                why = e
            if attempt < self._retries:
                with self._cond:  # a stop interrupts the back-off
                    if self._cond.wait_for(lambda: self._stopping, delay):
                        return
                delay *= 2
        self.failed += 1
        log.warning("callback to %s failed after %d attempts: %s", self.url, self._retries + 1, why)
