"""A power cut during a model push never leaves a half-written bundle: the service (`edgeapp
serve`, its own process group: HTTP server and accelerator worker) gets pushes that replace model
2 with the other of two versions (told apart by their answer and their sha256), and its whole
process group is killed with SIGKILL at a random moment of the push, round after round. After
each kill the model folder holds version A or version B of the bundle, whole; the service starts
again on it, serves the version its sha256 says with that version's answer, has cleaned up what
the push left aside, and edgeapp-diag names the same sha256.

SIGKILL keeps what the kernel has already accepted; that a real power cut keeps the same rests on
the fsyncs of edgeapp/model_store.py and edgeapp/bundle_archive.py (every file, every folder,
the model folder after each rename)."""
import collections
import os
import random
import re
import subprocess
import sys
import threading
import time

import requests

from edgeapp.bundle_digest import folder_digest
from pushing import TOKEN, bundle_from, label, model_dir_of, models, pack, push
from support import MODEL_DIR, Server, server_env
from test_facedb_powercut import group_alive, kill_group

SEED = 26
ROUNDS = 12
TIME_BOUND_S = 120.0  # the rounds stop early past this (the slowest machines)
VERSIONS = {"A": ["a-upright", "a-upside-down"], "B": ["b-upright", "b-upside-down"]}


class PowerCutServer(Server):
    name = "modelcut"
    own_process_group = True


def versions(tmp):
    """{version: (archive, sha256, the answer on the sample)}: text-direction with other labels."""
    out = {}
    for v, labels in sorted(VERSIONS.items()):
        folder = bundle_from(os.path.join(MODEL_DIR, "text-direction"), tmp / v / "text-direction",
                             label_list=labels)
        out[v] = (pack(folder, tmp / ("%s.tar.gz" % v)), folder_digest(str(folder)), labels[1])
    return out


def start(log_dir, model_dir):
    server = PowerCutServer(log_dir, model_dir, token=TOKEN)
    try:
        return server.wait_ready(60)
    except BaseException:
        kill_group(server)
        raise


def on_disk(model_dir, known):
    """The version the model folder's text-direction is, by its digest (None: neither, whole)."""
    digest = folder_digest(os.path.join(str(model_dir), "text-direction"))
    return next((v for v, (_, sha, _) in known.items() if sha == digest), None)


def diag_digest(server, model_dir):
    """The sha256 (12 characters) edgeapp-diag shows for model 2."""
    env = server_env(model_dir, port=server.port, host="127.0.0.1", token=TOKEN)
    out = subprocess.run([sys.executable, "-m", "edgeapp.diag"], env=env, stdout=subprocess.PIPE,
                         universal_newlines=True, timeout=60).stdout
    m = re.search(r"^bundles\s+: sha256 .*\b2 ([0-9a-f]{12})\b", out, re.M)
    return m.group(1) if m else out


def served(server, model_dir, known):
    """The version the restarted service serves, checked: its sha256, its answer, edgeapp-diag's
    line, and nothing left aside in the model folder."""
    sha = models(server.url)[2][2]
    version = next((v for v, (_, s, _) in known.items() if s == sha), None)
    assert version is not None, "model 2 serves a bundle that is neither version: %s" % sha
    assert label(server.url, 2) == known[version][2]
    assert diag_digest(server, model_dir) == sha[:12]
    assert sorted(os.listdir(str(model_dir))) == ["text-direction"]  # recovery removed what was aside
    return version


def timed_push(url, archive):
    started = time.monotonic()
    assert push(url, archive).status_code == 200
    return time.monotonic() - started


def push_in_background(url, archive, log):
    """A push in a thread; log gets its status (None: no answer) and how long it took."""
    def run():
        started = time.monotonic()
        try:
            log.append(push(url, archive, timeout=60).status_code)
        except requests.RequestException:
            log.append(None)
        log.append(time.monotonic() - started)
    t = threading.Thread(target=run)
    t.start()
    return t


def test_a_power_cut_during_a_push_leaves_the_old_bundle_or_the_new_one(tmp_path):
    t0 = time.monotonic()
    rng = random.Random(SEED)
    known = versions(tmp_path)
    model_dir = model_dir_of(tmp_path / "models", "text-direction")
    server = start(tmp_path, model_dir)
    try:
        # Whole pushes first: how long one takes is the window the kills are spread over.
        window = min(timed_push(server.url, known[v][0]) for v in ("A", "B", "A"))
        current = served(server, model_dir, known)
        assert current == "A"
        figures = collections.Counter()
        for r in range(ROUNDS):
            if time.monotonic() - t0 > TIME_BOUND_S:
                break
            other = "B" if current == "A" else "A"
            answers = []
            t = push_in_background(server.url, known[other][0], answers)
            # Half the kills anywhere in the push, half late in it, where the bundle is put in place.
            time.sleep(rng.uniform(0.0, window * 1.2) if r % 2 else rng.uniform(window * 0.6, window * 1.1))
            assert len(group_alive(server.proc.pid)) >= 1
            kill_group(server)
            t.join(60)
            aside = [n for n in os.listdir(str(model_dir)) if n.startswith(".")]  # the push's staging folder
            left = on_disk(model_dir, known)
            assert left in (current, other), "a half-written bundle after kill %d" % r
            server = start(tmp_path, model_dir)
            now = served(server, model_dir, known)
            assert now == left
            if answers[0] == 200:
                window = min(window, answers[1])  # it finished before the kill: aim earlier
                assert now == other  # acknowledged: installed for good
            figures["rounds"] += 1
            figures["new" if now == other else "old"] += 1
            figures["acknowledged"] += answers[0] == 200
            figures["mid-push"] += bool(aside)
            current = now
    finally:
        kill_group(server)
    assert figures["rounds"] >= 3
    assert figures["mid-push"] >= 2  # kills landed while a push had files on the disk
    print("model power cut: %d kills during pushes (a push takes %.2f s), %d with the push's files on the disk: "
          "%d left the new bundle (%d of them acknowledged), %d the old one; never a half-written one; %.1f s"
          % (figures["rounds"], window, figures["mid-push"], figures["new"], figures["acknowledged"], figures["old"],
             time.monotonic() - t0))
