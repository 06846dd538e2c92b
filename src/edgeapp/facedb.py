"""The face gallery: registered people's face vectors in SQLite on the board's storage, and in
memory as one matrix for matching.

Storage (the standard library's sqlite3): WAL journal, synchronous=FULL, every register and
delete one transaction, one writer (a lock here; locking_mode=EXCLUSIVE keeps other processes
out while the service has the file open). Why FULL and not NORMAL: in WAL mode FULL syncs the WAL
to the storage at every commit, before the commit returns, so a registration that was answered
200 survives a power cut; NORMAL syncs only at checkpoints, and a power cut may then take back the
last commits (the database stays consistent, but answered registrations are gone). SQLite also
syncs the folder when it creates the WAL file; this module syncs it when it creates the database
file. The cost is one fsync per register or delete, next to about 100 ms of inference per picture.

Model: every vector is stored with the embedding model's name and version (a model key
"name@version"), and only the vectors of the model in use (and its vector size) are loaded and
matched: vectors of different models are never compared. After a model change the older vectors
are kept on disk but never used; status() and the log name the people who must be registered
again (delete() removes them).

Memory: the vectors in use are one float32 matrix of unit rows, dim × 4 bytes per face: 4,096,000
bytes per 1,000 faces of a 1024-d model, plus the row -> userid list (8 bytes a row). A register
or delete builds the new matrix beside the old one, which keeps serving matches meanwhile, so for
a moment it takes twice that.
"""
import logging
import os
import sqlite3
import threading
import time
import unicodedata

import numpy as np

from edgeapp.errors import BadRequest, FaceDbUnavailable, FaceLimit

log = logging.getLogger("edgeapp.facedb")

SCHEMA_VERSION = 1
MAX_USERID_CHARS = 100
UNKNOWN = "unknown"  # DeepStack's userid of a face nobody registered: no person may be called that
BUSY_TIMEOUT_S = 5.0
WAL_SIZE_LIMIT = 4 * 1024 * 1024  # bytes the WAL file is cut back to after a checkpoint
VECTOR_DTYPE = np.dtype("<f4")  # stored little-endian, whatever the board
LISTED_USERS = 50  # people named in status() as to be registered again, at most

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS users (userid TEXT PRIMARY KEY, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS faces (id INTEGER PRIMARY KEY, "
    "userid TEXT NOT NULL REFERENCES users (userid) ON DELETE CASCADE, "
    "model TEXT NOT NULL, version TEXT NOT NULL, dim INTEGER NOT NULL, embedding BLOB NOT NULL, "
    "created REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS faces_by_user ON faces (userid)",
    "CREATE INDEX IF NOT EXISTS faces_by_model ON faces (model, version, dim)",
)


class FaceGallery:
    """The faces of one database file, matched with one embedding model (model_key, dim).

    Thread-safe: writes take a lock, matches read an immutable snapshot of the vectors.
    Raises BadRequest (a bad userid), FaceLimit (over max_users or max_faces_per_user),
    FaceDbUnavailable (the file cannot be opened or written) and ValueError (vectors of the
    wrong shape, not finite, or zero: a caller's bug)."""

    def __init__(self, path, model_key, dim, max_users, max_faces_per_user):
        self.path = path
        self.max_users = int(max_users)
        self.max_faces_per_user = int(max_faces_per_user)
        self._lock = threading.Lock()
        self._db = open_database(path)
        self.model_key, self.dim, self._model = None, None, None
        self._snap = _Vectors.empty(1)
        try:
            self.use_model(model_key, dim)
        except BaseException:
            self._db.close()
            raise

    # ---- the model in use ----

    def use_model(self, model_key, dim):
        """Match with this model from now on: its vectors are loaded from the database (and the
        people who have none of it are logged)."""
        name, version = split_model_key(model_key)
        dim = int(dim)
        if dim < 1:
            raise ValueError("a vector size must be 1 or more, got %d" % dim)
        with self._lock:
            self._check_open()
            self.model_key, self.dim, self._model = model_key, dim, (name, version, dim)
            self._reload()
            stale = self._stale()
        if stale["faces"]:
            log.warning("face database %s: %d face(s) were registered with another model (%s), not with %s now in "
                        "use: they are kept but never matched; register these people again: %s",
                        self.path, stale["faces"], ", ".join(m["model"] for m in stale["models"]), model_key,
                        ", ".join(stale["users"]) or "(none left without a face of this model)")
        log.info("face database %s: %d people, %d faces of %s", self.path, len(self._snap.counts),
                 len(self._snap.owners), model_key)

    def _reload(self):
        """The snapshot of the model in use, read from the database (under the lock), row by row
        into the one matrix: loading takes little more memory than the matrix itself."""
        model = self._model
        dim = model[2]
        n = self._db.execute("SELECT COUNT(*) FROM faces WHERE model = ? AND version = ? AND dim = ?",
                             model).fetchone()[0]
        matrix = np.zeros((n, dim), np.float32)
        owners = []
        rows = self._db.execute("SELECT userid, embedding FROM faces WHERE model = ? AND version = ? AND dim = ? "
                                "ORDER BY id LIMIT ?", model + (n,))
        for i, (userid, blob) in enumerate(rows):
            owners.append(userid)
            if len(blob) == dim * VECTOR_DTYPE.itemsize:
                matrix[i] = np.frombuffer(blob, VECTOR_DTYPE)
        with np.errstate(all="ignore"):  # einsum: no temporary the size of the matrix, as norm() makes
            norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))
        usable = np.isfinite(norms) & (norms > 0)  # a row SQLite kept but that is no vector: never matched
        # Stored rows are unit rows already: kept bit for bit (the matrix is the one before the
        # restart); only a row written otherwise is scaled.
        scale = np.where(usable & (np.abs(norms - 1.0) > 1e-5), norms, 1.0)
        matrix /= scale.astype(np.float32)[:, None]
        if not usable.all():
            log.warning("face database %s: %d stored face(s) are not usable vectors and are left out",
                        self.path, int((~usable).sum()))
            matrix = np.ascontiguousarray(matrix[usable])
            owners = [u for u, ok in zip(owners, usable) if ok]
        self._snap = _Vectors(matrix, owners)

    # ---- changes: one transaction each ----

    def register(self, userid, vectors):
        """Add faces (one vector each) to a person, new or not; returns how many faces of the
        model in use the person has now."""
        userid = check_userid(userid)
        with self._lock:
            self._check_open()
            rows = unit_rows(vectors, self.dim)
            snap = self._snap
            self._room(snap, userid, len(rows))
            self._write(self._insert, userid, rows)
            self._snap = snap.added(userid, rows)
            return snap.counts.get(userid, 0) + len(rows)

    def check_room(self, userid, n):
        """The userid as register() stores it, if n more faces of theirs fit in the limits now
        (else FaceLimit): lets a caller refuse before it computes the vectors."""
        userid = check_userid(userid)
        self._room(self._snap, userid, n)
        return userid

    def _room(self, snap, userid, n):
        have = snap.counts.get(userid, 0)
        if have == 0 and len(snap.counts) >= self.max_users:
            raise FaceLimit("the face database is full: %d people are registered, the most allowed "
                            "(EDGEAPP_FACE_MAX_USERS); delete someone first" % len(snap.counts))
        if have + n > self.max_faces_per_user:
            raise FaceLimit("%r would have %d faces; at most %d are allowed per person (EDGEAPP_FACE_MAX_PER_USER)%s"
                            % (userid, have + n, self.max_faces_per_user,
                               "; delete %r and register the best pictures again" % userid if have else ""))

    def delete(self, userid):
        """Remove a person and every face of theirs (of any model). True if they were there."""
        userid = check_userid(userid)
        with self._lock:
            self._check_open()
            existed = self._write(self._remove, userid)
            self._snap = self._snap.without(userid)
            return existed

    def _insert(self, userid, rows):
        now = time.time()
        name, version, dim = self._model
        self._db.execute("INSERT OR IGNORE INTO users (userid, created) VALUES (?, ?)", (userid, now))
        self._db.executemany(
            "INSERT INTO faces (userid, model, version, dim, embedding, created) VALUES (?, ?, ?, ?, ?, ?)",
            [(userid, name, version, dim, row.astype(VECTOR_DTYPE).tobytes(), now) for row in rows])

    def _remove(self, userid):
        self._db.execute("DELETE FROM faces WHERE userid = ?", (userid,))
        return self._db.execute("DELETE FROM users WHERE userid = ?", (userid,)).rowcount > 0

    def _write(self, change, *args):
        """change(*args) in one transaction (under the lock). On a database error nothing is
        changed, the snapshot is read again (so memory matches the file) and FaceDbUnavailable says
        why."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                out = change(*args)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return out
        except sqlite3.Error as e:
            log.error("face database %s: writing failed: %s", self.path, e)
            try:
                self._reload()
            except sqlite3.Error:
                pass
            raise FaceDbUnavailable("the face database %s cannot be written: %s" % (self.path, e))

    # ---- reading ----

    def users(self):
        """The people who can be recognised now (with faces of the model in use), sorted."""
        return sorted(self._snap.counts)

    def match(self, vector, threshold=None):
        """(userid, cosine similarity) of the registered face nearest to vector; userid None if
        the gallery is empty or the similarity is under threshold (cosine, -1..1)."""
        return self.match_many([vector], threshold)[0]

    def match_many(self, vectors, threshold=None):
        """match() of each vector (rows of a 2-d array, or a list of vectors), in one product."""
        snap = self._snap  # one snapshot for the whole call: a register meanwhile does not mix in
        queries = unit_rows(vectors, self.dim) if len(vectors) else np.zeros((0, self.dim), np.float32)
        if not snap.owners:
            return [(None, 0.0) for _ in range(len(queries))]
        sims = queries @ snap.matrix.T
        out = []
        for i, j in enumerate(sims.argmax(axis=1)):
            s = float(sims[i, j])
            out.append((snap.owners[j] if threshold is None or s >= threshold else None, s))
        return out

    def status(self):
        """Figures for /api/status: people, faces and memory of the model in use, the limits, the
        file's journal settings (synchronous 2 = FULL), and what is stored for other models (with
        the people to register again)."""
        with self._lock:
            self._check_open()
            snap = self._snap
            out = {"path": self.path, "model": self.model_key, "dim": self.dim, "users": len(snap.counts),
                   "faces": len(snap.owners), "memory_bytes": int(snap.matrix.nbytes),
                   "max_users": self.max_users, "max_faces_per_user": self.max_faces_per_user}
            out["storage"] = {name: str(self._db.execute("PRAGMA %s" % name).fetchone()[0]).lower()
                              for name in ("journal_mode", "synchronous", "locking_mode")}
            out["other_models"] = self._stale()
        return out

    def _stale(self):
        """What another model stored: {"faces", "models": [{model, dim, faces}], "users": [people
        without a face of the model in use], "users_total"} (under the lock)."""
        groups = self._db.execute("SELECT model, version, dim, COUNT(*) FROM faces GROUP BY model, version, dim "
                                  "ORDER BY model, version, dim").fetchall()
        models = [{"model": join_model_key(m, v), "dim": d, "faces": n} for m, v, d, n in groups
                  if (m, v, d) != self._model]
        users = [r[0] for r in self._db.execute(
            "SELECT userid FROM users WHERE userid NOT IN (SELECT userid FROM faces WHERE model = ? AND version = ? "
            "AND dim = ?) ORDER BY userid", self._model)]
        return {"faces": sum(m["faces"] for m in models), "models": models, "users": users[:LISTED_USERS],
                "users_total": len(users)}

    # ---- the end ----

    def close(self):
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _check_open(self):
        if self._db is None:
            raise FaceDbUnavailable("the face database %s is closed (the service is stopping)" % self.path)


class FaceStore:
    """The one gallery of the service, opened on first need and switched to the model in use:
    gallery(model_key, dim). Opening is tried again at each call while it fails."""

    def __init__(self, path, max_users, max_faces_per_user):
        self.path = path
        self.max_users, self.max_faces_per_user = max_users, max_faces_per_user
        self._lock = threading.Lock()
        self._gallery = None

    def gallery(self, model_key, dim):
        with self._lock:
            g = self._gallery
            if g is None:
                try:
                    g = FaceGallery(self.path, model_key, dim, self.max_users, self.max_faces_per_user)
                except FaceDbUnavailable as e:
                    log.error("%s", e.msg)
                    raise
                self._gallery = g
            elif (g.model_key, g.dim) != (model_key, int(dim)):
                g.use_model(model_key, dim)
            return g

    def status(self):
        """The gallery's status(), or None before it is opened."""
        g = self._gallery
        return None if g is None else g.status()

    def close(self):
        with self._lock:
            if self._gallery is not None:
                self._gallery.close()
                self._gallery = None


class _Vectors:
    """An immutable snapshot of the vectors in use: matrix (n, dim) of unit rows, owners (the
    userid of each row) and counts {userid: rows}."""

    def __init__(self, matrix, owners):
        self.matrix = matrix
        self.owners = tuple(owners)
        counts = {}
        for userid in self.owners:
            counts[userid] = counts.get(userid, 0) + 1
        self.counts = counts

    @classmethod
    def empty(cls, dim):
        return cls(np.zeros((0, dim), np.float32), ())

    def added(self, userid, rows):
        return _Vectors(np.concatenate([self.matrix, rows]), self.owners + (userid,) * len(rows))

    def without(self, userid):
        if userid not in self.counts:
            return self
        keep = np.array([u != userid for u in self.owners], bool)
        return _Vectors(self.matrix[keep], [u for u in self.owners if u != userid])


# ---- the database file ----

def open_database(path):
    """A connection to the face database at path, created if missing (its folder 0700 and the
    file 0600: faces are personal data), configured (see the module's docstring), its schema
    created or checked and its pages checked. FaceDbUnavailable says why it cannot be used."""
    try:
        _create_file(path)
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as e:
        raise FaceDbUnavailable("cannot open the face database %s: %s" % (path, e))
    try:
        _configure(db, path)
        _schema(db, path)
    except sqlite3.Error as e:
        db.close()
        hint = "; another process has it open" if "locked" in str(e) else ""
        raise FaceDbUnavailable("cannot use the face database %s: %s%s" % (path, e, hint))
    except BaseException:
        db.close()
        raise
    return db


def _create_file(path):
    """Create the empty file (and its folder) with owner-only permissions, and sync the folder
    so that the new name survives a power cut. SQLite gives its WAL file the same permissions."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _configure(db, path):
    # EXCLUSIVE before WAL: the WAL index then lives in this process's memory (no -shm file).
    db.execute("PRAGMA locking_mode = EXCLUSIVE")
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError("the file system does not allow a WAL journal (journal mode %s)" % mode)
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA journal_size_limit = %d" % WAL_SIZE_LIMIT)
    db.execute("PRAGMA foreign_keys = ON")


def _schema(db, path):
    """Create the tables (one transaction) or check that this code can read them; then check
    the pages (quick_check: a few ms for a gallery of this size)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA:
            db.execute(statement)
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            db.execute("INSERT INTO meta (key, value) VALUES ('created', ?)", (str(time.time()),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise sqlite3.DatabaseError("it was written by a newer edgeapp (schema %s; this one reads %d)"
                                        % (row[0], SCHEMA_VERSION))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    problems = [r[0] for r in db.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise sqlite3.DatabaseError("it is damaged (%s); keep a copy of the file and register the people again "
                                    "in a new one" % "; ".join(problems[:3]))


# ---- values ----

def check_userid(userid):
    """The person's name as stored: text without control characters, at most MAX_USERID_CHARS,
    spaces at either end removed, never "unknown" (what an unrecognised face is called)."""
    if not isinstance(userid, str) or not userid.strip():
        raise BadRequest("userid is missing or empty: name the person, e.g. userid=alice")
    userid = userid.strip()
    if len(userid) > MAX_USERID_CHARS:
        raise BadRequest("userid is %d characters long; at most %d are allowed" % (len(userid), MAX_USERID_CHARS))
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in userid):
        raise BadRequest("userid must not contain control characters")
    if userid == UNKNOWN:
        raise BadRequest("userid %r is what an unrecognised face is called; choose another name" % UNKNOWN)
    return userid


def unit_rows(vectors, dim):
    """vectors as a C-contiguous (n, dim) float32 array of unit rows (one vector: n = 1)."""
    a = np.asarray(vectors, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] != dim:
        raise ValueError("expected one or more vectors of %d numbers, got an array of shape %s" % (dim, a.shape))
    if not np.isfinite(a).all():
        raise ValueError("a face vector holds NaN or infinity")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    if not (norms > 0).all():
        raise ValueError("a face vector is all zeros")
    return np.ascontiguousarray(a / norms, dtype=np.float32)


def split_model_key(model_key):
    """(name, version) of "name@version" (the last @ splits; no @: version "")."""
    if not isinstance(model_key, str) or not model_key.strip():
        raise ValueError("a model key must be a non-empty 'name@version', got %r" % (model_key,))
    name, at, version = model_key.rpartition("@")
    return (name, version) if at and name else (model_key, "")


def join_model_key(name, version):
    return "%s@%s" % (name, version) if version else name
