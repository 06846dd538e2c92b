"""One sha256 for a model bundle's content, the same from its folder on a board and from its
archive on a person's machine (tools/fleet/push.py), so both sides can tell which bundle a board has.

The digest is the sha256 of the bundle's `sha256sum` listing: one line "<hex sha256>  <path>\\n"
per regular file, the path relative to the bundle folder with "/" between its parts, the lines
sorted by path (as bytes, UTF-8). Folders, modes and times do not count. By hand:

    cd FOLDER && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum

An archive's digest is edgeapp.bundle_archive's (archive_digest). Standard library only:
tools/fleet imports it, and it runs on Python 3.8.
"""
import hashlib
import os
import threading

CHUNK = 1024 * 1024


def listing_digest(entries):
    """The bundle digest of [(relative path, hex sha256 of the file)]."""
    h = hashlib.sha256()
    for path, sha in sorted(entries, key=lambda e: e[0].encode("utf-8")):
        h.update(("%s  %s\n" % (sha, path)).encode("utf-8"))
    return h.hexdigest()


def stream_sha256(stream):
    """Hex sha256 of what a binary stream holds from where it is."""
    h = hashlib.sha256()
    for block in iter(lambda: stream.read(CHUNK), b""):
        h.update(block)
    return h.hexdigest()


def file_sha256(path):
    with open(path, "rb") as f:
        return stream_sha256(f)


def bundle_files(folder):
    """[(relative path, absolute path)] of the regular files under folder (links are not followed)."""
    out = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                out.append((os.path.relpath(path, folder).replace(os.sep, "/"), path))
    return out


def folder_digest(folder):
    """The bundle digest of a bundle folder."""
    return listing_digest([(rel, file_sha256(path)) for rel, path in bundle_files(folder)])


class DigestCache:
    """Bundle digests of folders, computed again only when a file's size, time or inode changed:
    GET /api/models must not hash hundreds of megabytes on every call."""

    def __init__(self):
        self._known = {}  # folder -> (stamp of its files, digest)
        self._lock = threading.Lock()

    def of(self, folder):
        """The bundle digest of folder, or None if it cannot be read (or there is none)."""
        if not folder or not os.path.isdir(folder):
            return None
        try:
            stamp = _stamp(folder)
            with self._lock:
                known = self._known.get(folder)
            if known is not None and known[0] == stamp:
                return known[1]
            digest = folder_digest(folder)
        except OSError:
            return None
        with self._lock:
            self._known[folder] = (stamp, digest)
        return digest

    def remember(self, folder, digest):
        """Record a digest computed elsewhere (an install hashed the files it wrote)."""
        try:
            stamp = _stamp(folder)
        except OSError:
            return
        with self._lock:
            self._known[folder] = (stamp, digest)


def _stamp(folder):
    out = []
    for rel, path in bundle_files(folder):
        st = os.stat(path)
        out.append((rel, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)
