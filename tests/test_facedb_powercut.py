"""The face database never loses or corrupts a face when its writer dies: processes that register
and delete in a burst are killed with SIGKILL at random (seeded) moments, several rounds on one
database file; after each kill the file opens, passes PRAGMA integrity_check and holds exactly the
operations that were acknowledged, and the one in flight either whole or not at all.

Two writers: the gallery itself in a child process killed with its whole process group
(tests/face_burst.py), and the service, over the real HTTP routes (the stand-in face model of
tests/face_standin.py), killed -9 during its registers: acknowledged there means answered 200.

What a kill shows is that every change is one transaction that SQLite recovers whole; that a
power cut keeps what was acknowledged rests on synchronous=FULL (the WAL is synced before a commit
returns: tests/test_facedb.py checks the setting; see edgeapp/facedb.py).
"""
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import requests

import face_burst
from edgeapp.facedb import FaceGallery, unit_rows
from face_standin import person_vector, picture
from tools.launch import child_env
from test_deepstack_face import StandInServer

SEED = 23
BURST_ROUNDS = 8
HTTP_ROUNDS = 3


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


def applied(state, op):
    """state {userid: [bytes]} after one operation (a new dict)."""
    _, kind, userid, rows = op
    out = {u: list(b) for u, b in state.items()}
    if kind == "delete":
        out.pop(userid, None)
    else:
        out[userid] = sorted(out.get(userid, []) + as_stored(rows))
    return out


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
        state = applied(state, next(ops))
    after = stored(path)
    if in_flight is None:
        assert after == state
        return after, done, None
    whole = applied(state, next(ops))
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


# ---- the service, over HTTP ----

COLOURS = {"c%d-u%d" % (c, u): (40 + 50 * u, 60 + 120 * c, 90) for c in range(2) for u in range(3)}


def http_operations(client, rng, state):
    """Endless operations of one client on its own three people, (kind, userid, sizes), each
    valid (at most 3 faces a person) once the ones before it are done, from state on."""
    faces = {u: len(b) for u, b in state.items()}
    people = sorted(u for u in COLOURS if u.startswith("c%d-" % client))
    while True:
        userid = rng.choice(people)
        sizes = rng.sample(range(30, 70), rng.randint(1, 2))
        if faces.get(userid, 0) + len(sizes) > 3:
            faces.pop(userid, None)
            yield "delete", userid, None
        else:
            faces[userid] = faces.get(userid, 0) + len(sizes)
            yield "register", userid, sizes


def http_client(url, ops, log, stop):
    """Send ops one at a time until stop is set or the server dies; log [op, HTTP status or
    None when no answer came]."""
    session = requests.Session()
    for kind, userid, sizes in ops:
        if stop.is_set():
            return
        files = {"image%d" % i: picture([COLOURS[userid]], size=s) for i, s in enumerate(sizes or [])}
        entry = [(kind, userid, sizes), None]
        log.append(entry)
        try:
            r = session.post(url + "/v1/vision/face/" + kind, files=files or None, data={"userid": userid},
                             timeout=10)
        except requests.RequestException:
            return
        entry[1] = r.status_code
        if r.status_code != 200:
            entry.append(r.text)
            return


def http_state(state, entry):
    (kind, userid, sizes), _ = entry
    if kind == "delete":
        rows = None
    else:
        rows = [person_vector(COLOURS[userid], photo=(s, s)) for s in sizes]
    return applied(state, (0, kind, userid, rows))


def test_kill_9_of_the_service_during_registers_loses_nothing(tmp_path):
    path = str(tmp_path / "faces.db")
    rng = random.Random(SEED)
    state, answered = {}, 0
    for r in range(HTTP_ROUNDS):
        server = StandInServer(tmp_path, face_db=path, face_max_users=10, face_max_per_user=3).wait_ready(30)
        listed = requests.post(server.url + "/v1/vision/face/list", timeout=10).json()["faces"]
        assert listed == sorted(state)  # read back from the database at start
        logs, stop = [[], []], threading.Event()
        clients = [threading.Thread(target=http_client, args=(
            server.url, http_operations(c, random.Random(rng.random()), state), logs[c], stop)) for c in range(2)]
        for t in clients:
            t.start()
        time.sleep(rng.uniform(0.2, 0.6))
        server.proc.kill()  # kill -9 of the service, mid-burst
        server.proc.wait()
        stop.set()
        for t in clients:
            t.join(15)
        state, done = http_round_state(state, logs, stored(path))
        answered += done
    assert answered >= HTTP_ROUNDS
    print("service: %d operations answered 200 over %d kills" % (answered, HTTP_ROUNDS))


def http_round_state(state, logs, after):
    """The state after a round, checked: each client's answered operations in order (the two touch
    different people), then each one's unanswered last operation, whole or not at all."""
    done = 0
    pending = []
    for log in logs:
        assert all(entry[1] == 200 for entry in log[:-1]) and (not log or log[-1][1] in (200, None)), log[-1]
        for entry in log:
            if entry[1] == 200:
                state = http_state(state, entry)
                done += 1
            else:
                pending.append(entry)
    candidates = [state]
    for entry in pending:
        candidates += [http_state(s, entry) for s in candidates]
    assert after in candidates, "an unanswered operation was half done"
    return after, done
