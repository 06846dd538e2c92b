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

Model: every vector is stored with its embedding model's key (what makes vectors comparable: the
model's name, version, file and preprocessing, e.g. "package==3.0.4:file:crop1.40"), that key's
name and version, and its size, and every call names the key it is about: vectors of different
keys or sizes are never compared. After a model change the older vectors are kept on disk but
never used; use_model() logs, and status() lists, the people who must be registered again
(delete() removes a person with every face of every model).

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
RETRY_S = 10.0  # after a failed open, the next try at most this often
WAL_SIZE_LIMIT = 4 * 1024 * 1024  # bytes the WAL file is cut back to after a checkpoint
VECTOR_DTYPE = np.dtype("<f4")  # stored little-endian, whatever the board
LISTED_USERS = 50  # people named in status() as to be registered again, at most

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS users (userid TEXT PRIMARY KEY, created REAL NOT NULL)",
    # model_key: what matching compares (the whole key); model and version: its parts, for people.
    "CREATE TABLE IF NOT EXISTS faces (id INTEGER PRIMARY KEY, "
    "userid TEXT NOT NULL REFERENCES users (userid) ON DELETE CASCADE, "
    "model_key TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL, dim INTEGER NOT NULL, "
    "embedding BLOB NOT NULL, created REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS faces_by_user ON faces (userid)",
    "CREATE INDEX IF NOT EXISTS faces_by_model ON faces (model_key, dim)",
)


class FaceGallery:
    """The faces of one database file. Every call names the embedding model (model_key) whose
    vectors it is about; vectors of other keys (or sizes) are never compared with them.

    The file is opened at once; if that fails, the error is logged, status() reports it and each
    call tries again (raising FaceDbUnavailable while it fails): the service starts either way.
    Thread-safe: changes take a lock, matches read an immutable snapshot per model.
    Raises BadRequest (a bad userid), FaceLimit (over max_users or max_faces_per_user, counted
    per model), FaceDbUnavailable, and ValueError (vectors of the wrong shape, not finite, or
    zero: a caller's bug)."""

    def __init__(self, path, max_users, max_faces_per_user, threshold=None):
        """threshold: the similarity from which a face is named (the face_threshold setting);
        None: each face model's own (FaceRecognizer.bar())."""
        self.path = path
        self.threshold = threshold
        self.max_users = int(max_users)
        self.max_faces_per_user = int(max_faces_per_user)
        self.model_key, self.dim = None, None  # the model in use (use_model), for status()
        self._lock = threading.Lock()
        self._db, self._error, self._closed = None, None, False
        self._retry_at = 0.0  # monotonic time of the next open after a failed one
        self._snaps = {}  # (model_key, dim) -> _Vectors
        try:
            with self._lock:
                self._connect()
        except FaceDbUnavailable:
            pass  # logged; the calls try again

    # ---- the model in use ----

    def use_model(self, model_key, dim):
        """The model the service matches with from now on: its vectors are read from the file now
        (start-up, or a model change), other models' are dropped from memory, and the people
        registered with another model only are logged, to be registered again."""
        key = _key(model_key, dim)
        with self._lock:
            self.model_key, self.dim = key  # first: status() names the model even when the file fails
            self._connect()
            self._snaps = {key: self._snapshot(key)}
            stale = self._stale(key)
            people = len(self._snaps[key].counts)
        if stale["faces"]:
            log.warning("face database %s: %d face(s) were registered with another model (%s), not with %s now in "
                        "use: they are kept but never matched; register these people again: %s",
                        self.path, stale["faces"], ", ".join(m["model"] for m in stale["models"]), model_key,
                        ", ".join(stale["users"]) or "(none left without a face of this model)")
        log.info("face database %s: %d people registered with %s", self.path, people, model_key)

    def _snapshot(self, key):
        """The vectors of key (model_key, dim), from memory or read from the file (under the lock)."""
        snap = self._snaps.get(key)
        if snap is None:
            snap = self._snaps[key] = self._load(key)
        return snap

    def _load(self, key):
        """key's vectors read from the file row by row into the one matrix: loading takes little
        more memory than the matrix itself."""
        dim = key[1]
        n = self._db.execute("SELECT COUNT(*) FROM faces WHERE model_key = ? AND dim = ?", key).fetchone()[0]
        matrix = np.zeros((n, dim), np.float32)
        owners = []
        rows = self._db.execute("SELECT userid, embedding FROM faces WHERE model_key = ? AND dim = ? "
                                "ORDER BY id LIMIT ?", key + (n,))
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
        return _Vectors(matrix, owners)

    # ---- changes: one transaction each ----

    def register(self, userid, vectors, model_key):
        """Add faces (one vector each, of model_key's model) to a person, new or not; returns how
        many faces of that model the person has now."""
        userid = check_userid(userid)
        rows = _rows(vectors)
        key = _key(model_key, rows.shape[1])
        with self._lock:
            self._connect()
            snap = self._snapshot(key)
            self._room(snap, userid, len(rows))
            self._write(self._insert, userid, rows, key)
            self._snaps[key] = snap.added(userid, rows)
            return snap.counts.get(userid, 0) + len(rows)

    def check_room(self, userid, n, model_key, dim):
        """The userid as register() stores it, if n more faces of theirs fit in the limits now
        (else FaceLimit): lets a caller refuse before it computes the vectors."""
        userid = check_userid(userid)
        key = _key(model_key, dim)
        with self._lock:
            self._connect()
            self._room(self._snapshot(key), userid, n)
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
        """Remove a person and every face of theirs (of every model). True if they were there."""
        userid = check_userid(userid)
        with self._lock:
            self._connect()
            existed = self._write(self._remove, userid)
            self._snaps = {key: snap.without(userid) for key, snap in self._snaps.items()}
            return existed

    def _insert(self, userid, rows, key):
        now = time.time()
        name, version = split_model_key(key[0])
        self._db.execute("INSERT OR IGNORE INTO users (userid, created) VALUES (?, ?)", (userid, now))
        self._db.executemany(
            "INSERT INTO faces (userid, model_key, model, version, dim, embedding, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(userid, key[0], name, version, key[1], row.astype(VECTOR_DTYPE).tobytes(), now) for row in rows])

    def _remove(self, userid):
        self._db.execute("DELETE FROM faces WHERE userid = ?", (userid,))
        return self._db.execute("DELETE FROM users WHERE userid = ?", (userid,)).rowcount > 0

    def _write(self, change, *args):
        """change(*args) in one transaction (under the lock). On a database error nothing is
        changed, the snapshots are read again (so memory matches the file) and FaceDbUnavailable
        says why."""
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
            self._snaps = {}  # read again at the next use
            raise FaceDbUnavailable("the face database %s cannot be written: %s" % (self.path, e))

    # ---- reading ----

    def users(self, model_key, dim):
        """The people who can be recognised with model_key's vectors of size dim, sorted."""
        with self._lock:
            self._connect()
            return sorted(self._snapshot(_key(model_key, dim)).counts)

    def match(self, vectors, model_key, threshold=None):
        """[(userid, cosine similarity)] of the registered face nearest to each vector (rows of a
        2-d array, a list of vectors, or one vector), among model_key's faces, in one product;
        userid None if none is registered or the similarity is under threshold (-1..1)."""
        if len(vectors) == 0:
            return []
        queries = _rows(vectors)
        key = _key(model_key, queries.shape[1])
        snap = self._snaps.get(key)  # one snapshot for the whole call: a register meanwhile does not mix in
        if snap is None:
            with self._lock:
                self._connect()
                snap = self._snapshot(key)
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
        file's journal settings (synchronous 2 = FULL), what is stored for other models (with the
        people to register again); or the error that keeps the file closed."""
        out = {"path": self.path, "model": self.model_key, "dim": self.dim, "max_users": self.max_users,
               "max_faces_per_user": self.max_faces_per_user}
        with self._lock:
            try:
                self._connect()
            except FaceDbUnavailable as e:
                return dict(out, error=e.msg)
            try:
                return dict(out, **self._figures())
            except sqlite3.Error as e:  # a page damaged since it was opened: said, not a 500
                log.error("face database %s: reading failed: %s", self.path, e)
                return dict(out, error="the face database %s cannot be read: %s" % (self.path, e))

    def _figures(self):
        """status()'s figures from memory and the file (under the lock)."""
        key = (self.model_key, self.dim)
        snap = self._snapshot(key) if self.model_key else _Vectors.empty(1)
        return {"users": len(snap.counts), "faces": len(snap.owners),
                "memory_bytes": sum(int(s.matrix.nbytes) for s in self._snaps.values()),
                "storage": {name: str(self._db.execute("PRAGMA %s" % name).fetchone()[0]).lower()
                            for name in ("journal_mode", "synchronous", "locking_mode")},
                "other_models": self._stale(key if self.model_key else None)}

    def _stale(self, key):
        """What other models stored: {"faces", "models": [{model, dim, faces}], "users": [people
        without a face of key's model], "users_total"} (under the lock)."""
        groups = self._db.execute("SELECT model_key, dim, COUNT(*) FROM faces GROUP BY model_key, dim "
                                  "ORDER BY model_key, dim").fetchall()
        models = [{"model": k, "dim": d, "faces": n} for k, d, n in groups if (k, d) != key]
        users = [r[0] for r in self._db.execute(
            "SELECT userid FROM users WHERE userid NOT IN (SELECT userid FROM faces WHERE model_key = ? AND dim = ?) "
            "ORDER BY userid", key or ("", 0))]
        return {"faces": sum(m["faces"] for m in models), "models": models, "users": users[:LISTED_USERS],
                "users_total": len(users)}

    # ---- the file ----

    def _connect(self):
        """Open the file if it is not open (under the lock); FaceDbUnavailable if it cannot be.

        After a failure the open is tried again RETRY_S later, not at every call: an attempt
        can wait BUSY_TIMEOUT_S for a file another process holds, and /api/status, /metrics and
        every face request would each wait that long, one after another, behind the lock."""
        if self._closed:
            raise FaceDbUnavailable("the face database %s is closed (the service is stopping)" % self.path)
        if self._db is not None:
            return
        if self._error is not None and time.monotonic() < self._retry_at:
            raise FaceDbUnavailable(self._error)
        try:
            self._db = open_database(self.path)
        except FaceDbUnavailable as e:
            if e.msg != self._error:  # once per cause, not at every request
                log.error("%s", e.msg)
            self._error, self._retry_at = e.msg, time.monotonic() + RETRY_S
            raise
        self._error = None

    def close(self):
        with self._lock:
            self._closed = True
            if self._db is not None:
                self._db.close()
                self._db = None


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
    """(name, version) of a model key, for people: "package==version..." (pip's way) splits at
    the first ==, "name@version" at the last @; else the version is ""."""
    if not isinstance(model_key, str) or not model_key.strip():
        raise ValueError("a model key must be a non-empty text such as 'name==version', got %r" % (model_key,))
    name, sep, version = model_key.partition("==")
    if sep and name:
        return name, version
    name, at, version = model_key.rpartition("@")
    return (name, version) if at and name else (model_key, "")


def _key(model_key, dim):
    split_model_key(model_key)  # ValueError for what is no key
    dim = int(dim)
    if dim < 1:
        raise ValueError("a vector size must be 1 or more, got %d" % dim)
    return model_key, dim


def _rows(vectors):
    """unit_rows() of vectors, whatever their size."""
    a = np.asarray(vectors, dtype=np.float32)
    return unit_rows(a, a.shape[-1] if a.ndim else 0)
