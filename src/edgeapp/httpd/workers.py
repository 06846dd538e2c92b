"""Request threads: a fixed number of them taking connections from a bounded queue."""
import logging
import queue
import threading
import time

log = logging.getLogger("edgeapp.http")


class Workers:
    """count threads, each taking a connection with a gathered request from the queue, letting
    it answer (conn.communicate()) and handing it to finish(conn, keep). offer() never waits:
    False when the queue is full (the caller refuses the request)."""

    def __init__(self, name, count, queue_size, finish):
        self.name = name
        self.count = count
        self.queue = queue.Queue(maxsize=queue_size)
        self.finish = finish
        self.threads = []

    def start(self):
        for i in range(self.count):
            t = threading.Thread(target=self._run, name="%s-%d" % (self.name, i), daemon=True)
            t.start()
            self.threads.append(t)

    def offer(self, conn):
        try:
            self.queue.put_nowait(conn)
            return True
        except queue.Full:
            return False

    def stop(self, timeout):
        """Close the connections still queued and let each thread finish its request, for at
        most timeout seconds in all."""
        end = time.monotonic() + timeout
        while True:
            try:
                conn = self.queue.get_nowait()
            except queue.Empty:
                break
            if conn is not None:
                conn.close_now()
        for t in self.threads:
            try:
                self.queue.put(None, timeout=max(0.01, end - time.monotonic()))
            except queue.Full:
                break
        for t in self.threads:
            t.join(max(0.0, end - time.monotonic()))

    def _run(self):
        while True:
            conn = self.queue.get()
            if conn is None:
                return
            keep = False
            try:
                keep = conn.communicate()
            except Exception:  # communicate() answers its own errors; this is the last resort
                log.exception("a request failed")
            try:
                self.finish(conn, keep)
            except Exception:
                log.exception("a connection could not be kept or closed")
