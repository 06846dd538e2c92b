"""The face database never loses or corrupts a face when its writer dies: processes that register
and delete in a burst are killed with SIGKILL at random (seeded) moments, several rounds on one
database file; after each kill the file opens, passes PRAGMA integrity_check and holds exactly the
operations that were acknowledged, and the one in flight either whole or not at all.

Two writers, each killed with its whole process group, as a power cut would:
- the gallery itself in a child process (tests/face_burst.py): thousands of changes a second, so
  kills land inside transactions;
- the service as a user runs it (`edgeapp serve`: the HTTP server and its accelerator worker, the
  real face models, a model dir of the face detector and face-recognition only), with clients
  registering photographs (one or two a request) and deleting people over DeepStack's routes:
  acknowledged there means answered 200, and every stored face is traced back to the picture it
  was registered from (its vector, computed here with the same models). After each kill the
  service starts again on the file as the kill left it and lists the same people.

What a kill shows is that every change is one transaction that SQLite recovers whole; that a
power cut keeps what was acknowledged rests on synchronous=FULL (the WAL is synced before a commit
returns: tests/test_facedb.py checks the setting; see edgeapp/facedb.py).
"""
import collections
import glob
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
import requests

import face_burst
from edgeapp.accelerator import LocalAccelerator
from edgeapp.bundle import load_bundles
from edgeapp.deepstack_face import FACE_MODEL
from edgeapp.engine import Engine
from edgeapp.facedb import FaceGallery, unit_rows
from support import MODEL_DIR, Server
from textimages import encode
from tools.launch import child_env

SEED = 23
BURST_ROUNDS = 8
MAX_PIXELS = 40 * 1000 * 1000  # the max_pixels setting's default


def stored(path):
    """{userid: sorted embedding bytes} of the database file, after its integrity check; every
    person in `users` has faces and every face a person."""
    db = sqlite3.connect(path, timeout=0)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        faces = {}
        for userid, blob in db.execute("SELECT userid, embedding FROM faces"):
            faces.setdefault(userid, []).append(blob)
        assert sorted(r[0] for r in db.execute("SELECT userid FROM users")) == sorted(faces)
        return {u: sorted(b) for u, b in faces.items()}
    finally:
        db.close()


def as_stored(rows):
    return [row.astype("<f4").tobytes() for row in unit_rows(rows, len(rows[0]))]


def applied(state, kind, userid, faces):
    """state {userid: sorted faces} after one operation (a new dict): "delete", or "register"
    adding the faces (stored vectors, or the names of the pictures they came from)."""
    out = {u: list(f) for u, f in state.items()}
    if kind == "delete":
        out.pop(userid, None)
    else:
        out[userid] = sorted(out.get(userid, []) + list(faces))
    return out


def burst_applied(state, op):
    _, kind, userid, rows = op
    return applied(state, kind, userid, None if rows is None else as_stored(rows))


def acknowledged(lines):
    """(operations done, the operation in flight or None) from a burst's "b N" / "d N" lines."""
    begun = [int(x[2:]) for x in lines if x.startswith("b ")]
    done = {int(x[2:]) for x in lines if x.startswith("d ")}
    in_flight = [i for i in begun if i not in done]
    assert len(in_flight) <= 1 and sorted(done) == begun[:len(done)]
    return len(done), (in_flight[0] if in_flight else None)


def burst_round(path, seed, state, rng):
    """One child bursting on path, killed at a random moment; returns the state it left, checked."""
    counts = {u: len(b) for u, b in state.items()}
    proc = subprocess.Popen([sys.executable, face_burst.__file__, path, str(seed),
                             ",".join("%s=%d" % kv for kv in sorted(counts.items()))],
                            stdout=subprocess.PIPE, env=child_env(), start_new_session=True)
    assert proc.stdout.readline() == b"ready\n"
    time.sleep(rng.uniform(0.005, 0.25))
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, as a power cut would
    out = proc.stdout.read().decode().split("\n")
    proc.wait()
    done, in_flight = acknowledged(out)
    ops = face_burst.operations(seed, counts)
    for _ in range(done):
        state = burst_applied(state, next(ops))
    after = stored(path)
    if in_flight is None:
        assert after == state
        return after, done, None
    whole = burst_applied(state, next(ops))
    assert after in (state, whole), "operation %d was half done" % in_flight
    return after, done, after == whole


def test_killing_a_burst_of_registers_and_deletes_loses_nothing(tmp_path):
    path = str(tmp_path / "faces.db")
    rng = random.Random(SEED)
    state, total, in_flight = {}, 0, []
    for r in range(BURST_ROUNDS):
        state, done, committed = burst_round(path, SEED * 100 + r, state, rng)
        total += done
        in_flight.append(committed)
    assert total >= BURST_ROUNDS  # the kills came during bursts, not before them
    g = FaceGallery(path, 100, 100)
    g.use_model(face_burst.MODEL, face_burst.DIM)  # what the service would load
    assert g.users(face_burst.MODEL, face_burst.DIM) == sorted(state)
    assert g.status()["faces"] == sum(len(b) for b in state.values())
    g.close()
    print("burst: %d operations acknowledged over %d kills; one in flight at %d kills, of which %d were "
          "found whole" % (total, BURST_ROUNDS, sum(c is not None for c in in_flight), sum(bool(c) for c in in_flight)))


# ---- the service as a user runs it, over HTTP ----

SERVICE_ROUNDS = 3
CLIENTS = 3
PER_USER = 3  # face_max_per_user: a person who would have more is deleted instead
PHOTOS = {"obama": ("obama", "obama3"), "biden": ("biden",)}  # each person's photographs (face_photos)
USERS = ["c%d-%s" % (c, person) for c in range(CLIENTS) for person in sorted(PHOTOS)]
ROUND_TIMEOUT_S = 30.0  # at most, for the answered registers a round waits for before its kill
SAME_VECTOR = 0.9999  # cosine: a stored face is the vector of the picture it came from (two pictures: < 0.98)


class PowerCutServer(Server):
    """`edgeapp serve` in a process group of its own: the server and its accelerator worker."""
    name = "powercut"
    own_process_group = True


@pytest.fixture(scope="module")
def face_models(tmp_path_factory):
    """A model dir with only the face detector and face-recognition: a service that starts in a second."""
    models = tmp_path_factory.mktemp("face-models")
    for name in ("face", FACE_MODEL):
        os.symlink(os.path.join(MODEL_DIR, name), str(models / name))
    return models


@pytest.fixture(scope="module")
def pictures(face_photos):
    """{name: JPEG}: each photograph 640 px high, and mirrored at 320 px: six faces, none alike."""
    def shrunk(photo, height):
        f = height / float(photo.shape[0])
        return cv2.resize(photo, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    out = {}
    for photo_id, photo in face_photos.items():
        out[photo_id] = encode(shrunk(photo, 640), ".jpg")
        out[photo_id + "-mirrored"] = encode(cv2.flip(shrunk(photo, 320), 1), ".jpg")
    return out


@pytest.fixture(scope="module")
def vectors(face_models, pictures):
    """{picture name: its face's vector}, computed here with the same models as the service: what
    traces every stored face back to the picture it was registered from."""
    bundles = load_bundles(str(face_models))
    engine = Engine(bundles, LocalAccelerator(bundles, warm=False))
    mid = [m for m, b in bundles.items() if b.name == FACE_MODEL][0]
    out = {}
    for name, data in sorted(pictures.items()):
        image, _ = engine.decode(data, MAX_PIXELS, [mid])
        faces = engine.faces(mid, image)
        assert len(faces) == 1, name
        out[name] = faces[0].vector
    sims = np.array(list(out.values())) @ np.array(list(out.values())).T
    assert (sims[~np.eye(len(out), dtype=bool)] < SAME_VECTOR).all()  # each picture's face is its own
    return out


def pictures_of(userid):
    person = userid.partition("-")[2]
    return [p + kind for p in PHOTOS[person] for kind in ("", "-mirrored")]


def client_operations(client, rng, state):
    """Endless operations (kind, userid, picture names) of one client on its own people, each
    valid once the ones before it are done (at most PER_USER faces a person), from state on: a
    delete first if the client has anyone, then registers of one or two of the person's
    pictures, and some deletes."""
    faces = {u: len(state.get(u, ())) for u in USERS if u.startswith("c%d-" % client)}
    registered = sorted(u for u, n in faces.items() if n)
    if registered:
        userid = rng.choice(registered)
        faces[userid] = 0
        yield "delete", userid, ()
    while True:
        userid = rng.choice(sorted(faces))
        n = rng.randint(1, 2)
        if faces[userid] and (faces[userid] + n > PER_USER or rng.random() < 0.2):
            faces[userid] = 0
            yield "delete", userid, ()
        else:
            faces[userid] += n
            yield "register", userid, tuple(rng.sample(pictures_of(userid), n))


def send(url, ops, pictures, log, stop):
    """Send ops one at a time until stop is set or the service dies; log [op, HTTP status (None:
    no answer came), answer]."""
    with requests.Session() as session:
        for kind, userid, names in ops:
            if stop.is_set():
                return
            entry = [(kind, userid, names), None, ""]
            log.append(entry)
            files = {"image%d" % i: pictures[name] for i, name in enumerate(names)}
            try:
                r = session.post(url + "/v1/vision/face/" + kind, files=files or None, data={"userid": userid},
                                 timeout=30)
            except requests.RequestException:
                return
            entry[1:] = [r.status_code, r.text]
            if r.status_code != 200:
                return


def group_alive(pgid):
    """Pids of the processes of group pgid that are alive (not zombies), from /proc."""
    pids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.split("/")[2]))
    return pids


def wait_for(condition, timeout):
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)
    return condition()


def named(path, vectors):
    """{userid: sorted picture names} of a copy of the database file (checked by stored()):
    every stored face traced to the picture whose vector it is."""
    names = sorted(vectors)
    matrix = np.array([vectors[n] for n in names])
    out = {}
    for userid, blobs in stored(path).items():
        for blob in blobs:
            sims = matrix @ np.frombuffer(blob, "<f4")
            j = int(sims.argmax())
            assert sims[j] >= SAME_VECTOR, "a face of %s is no picture sent (nearest: %s)" % (userid, names[j])
            out.setdefault(userid, []).append(names[j])
    return {u: sorted(n) for u, n in out.items()}


def crashed_copy(path, folder):
    """A copy of the database file and its WAL as the kill left them: the test reads the copy,
    the service recovers the file itself when it starts again."""
    os.makedirs(folder)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            shutil.copy(path + suffix, os.path.join(folder, "faces.db" + suffix))
    return os.path.join(folder, "faces.db")


def start_service(log_dir, face_models, path, state):
    """The service on the database file, checked: it lists the people of state, with their faces."""
    server = PowerCutServer(log_dir, face_models, face_db=path, face_max_users=len(USERS),
                            face_max_per_user=PER_USER)
    try:
        server.wait_ready(60)
        listed = requests.post(server.url + "/v1/vision/face/list", timeout=10).json()["faces"]
        assert listed == sorted(state)
        faces = requests.get(server.url + "/api/status", timeout=10).json()["data"]["faces"]
        assert faces["faces"] == sum(len(f) for f in state.values())
    except BaseException:
        kill_group(server)
        raise
    return server


def kill_group(server):
    """SIGKILL to the service's whole process group (the server and its worker), as a power cut."""
    try:
        os.killpg(server.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.proc.wait(10)
    assert wait_for(lambda: not group_alive(server.proc.pid), 10), group_alive(server.proc.pid)


def burst_and_kill(server, rng, state, pictures):
    """Clients registering and deleting until a random number of registers were answered and a
    random moment more, then the kill; returns each client's log."""
    logs, stop = [[] for _ in range(CLIENTS)], threading.Event()
    clients = [threading.Thread(target=send, args=(
        server.url, client_operations(c, random.Random(rng.random()), state), pictures, logs[c], stop))
        for c in range(CLIENTS)]
    target = rng.randint(2, 5)
    try:
        for t in clients:
            t.start()
        wait_for(lambda: len(answered(logs, "register")) >= target or not any(t.is_alive() for t in clients),
                 ROUND_TIMEOUT_S)
        time.sleep(rng.uniform(0, 0.3))
        assert len(group_alive(server.proc.pid)) >= 2  # the server and its accelerator worker
    finally:
        kill_group(server)
        stop.set()
        for t in clients:
            t.join(30)
    assert not any(t.is_alive() for t in clients)
    return logs


def answered(logs, kind):
    """The operations of that kind answered 200 in the clients' logs."""
    return [e[0] for log in logs for e in log if e[1] == 200 and e[0][0] == kind]


def round_state(state, logs, after):
    """The state after a round, checked against the database's: each client's operations that
    were answered 200, in order (a client touches its own people only), then its last one if no
    answer came, whole or not at all. Returns (state, answered ops, unanswered ops, of them found
    done)."""
    done, pending = 0, []
    for log in logs:
        assert all(e[1] == 200 for e in log[:-1]) and (not log or log[-1][1] in (200, None)), log[-1]
        for op, status, _ in log:
            if status == 200:
                state = applied(state, *op)
                done += 1
            else:
                pending.append(op)
    candidates = [state]
    for op in pending:
        candidates += [applied(s, *op) for s in candidates]
    assert after in candidates, "not the operations answered 200, with each unanswered one whole or not at all " \
        "(unanswered: %s)" % pending
    landed = sum(after.get(op[1]) == applied(state, *op).get(op[1]) for op in pending)
    return after, done, len(pending), landed


def test_a_power_cut_of_the_service_during_registers_loses_nothing(tmp_path, face_models, pictures, vectors):
    """The real service (`edgeapp serve`: HTTP server and accelerator worker, the real face
    models) with clients registering photographs and deleting people, its process group killed
    with SIGKILL at random moments, several rounds on one database file."""
    t0 = time.monotonic()
    path = str(tmp_path / "faces.db")
    rng = random.Random(SEED)
    state, figures = {}, collections.Counter()
    for r in range(SERVICE_ROUNDS):
        server = start_service(tmp_path, face_models, path, state)
        logs = burst_and_kill(server, rng, state, pictures)
        after = named(crashed_copy(path, str(tmp_path / ("kill%d" % r))), vectors)
        state, done, pending, landed = round_state(state, logs, after)
        registers = answered(logs, "register")
        figures.update(answered=done, registers=len(registers), pictures=sum(len(op[2]) for op in registers),
                       deletes=len(answered(logs, "delete")), kills_in_flight=bool(pending), unanswered=pending,
                       unanswered_done=landed)
    assert start_service(tmp_path, face_models, path, state).stop() == 0  # the last kill's file, recovered
    assert named(path, vectors) == state
    assert figures["registers"] >= SERVICE_ROUNDS * 2 and figures["deletes"] >= 1
    print("service: %d rounds, %d operations answered 200 (%d registers of %d pictures, %d deletes), %d kills "
          "with an operation in flight, %d unanswered operations of which %d were found done; %.1f s"
          % (SERVICE_ROUNDS, figures["answered"], figures["registers"], figures["pictures"], figures["deletes"],
             figures["kills_in_flight"], figures["unanswered"], figures["unanswered_done"], time.monotonic() - t0))
