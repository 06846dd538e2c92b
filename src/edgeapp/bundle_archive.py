"""A bundle archive (the .tar.gz of one bundle folder, as tools/bundle.py and tools/build_models.py
write the folder) checked member by member, and unpacked only if every member is safe.

Refused: a member whose path is absolute or climbs out with "..", anything but folders and
regular files (symbolic and hard links, devices, FIFOs, sparse files), more than one top folder or
loose files beside it, a top folder name that is hidden or odd, the same path twice, more than
MAX_MEMBERS members, and more than max_bytes in all once unpacked (a gzip bomb stops there, not on
the disk). Unpacking writes each file itself (never tarfile.extract: no mode, owner, time or link
of the archive is applied), fsyncs every file and folder, and hashes what it writes
(edgeapp.bundle_digest), so the digest is of the bytes on disk.

Standard library only: tools/fleet/push.py reads archives with it on a person's machine.
"""
import hashlib
import os
import re
import tarfile
import zlib

from edgeapp.bundle_digest import CHUNK, listing_digest, stream_sha256

MAX_MEMBERS = 1000
FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
MAKE_IT = "make it with: tar czf NAME.tar.gz -C PARENT_FOLDER NAME"


class ArchiveError(ValueError):
    """The archive is refused; the message says why and what to do."""


class ArchiveTooLarge(ArchiveError):
    """The archive unpacks to more than the limit."""


def members(tar, max_bytes):
    """(top folder name, [(relative path parts, member)] of its files and folders), every member
    checked; ArchiveError for the first unsafe one."""
    top, out, seen, total = None, [], set(), 0
    try:
        for n, m in enumerate(tar, 1):
            if n > MAX_MEMBERS:
                raise ArchiveError("the archive has more than %d members; a bundle has a few files" % MAX_MEMBERS)
            parts = member_parts(m)
            if not parts:
                continue  # "." or "./": the folder the archive was made from
            top = _same_top(top, parts, m)
            key = "/".join(parts)
            if key in seen:
                raise ArchiveError("%s is in the archive twice" % key)
            seen.add(key)
            total += m.size if m.isfile() else 0
            if total > max_bytes:
                raise ArchiveTooLarge("the bundle unpacks to more than %d bytes (EDGEAPP_MAX_BUNDLE_BYTES)" % max_bytes)
            if len(parts) > 1:
                out.append((parts[1:], m))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise ArchiveError("not a readable .tar.gz archive (%s); %s" % (_first_line(e), MAKE_IT))
    if top is None:
        raise ArchiveError("the archive is empty; %s" % MAKE_IT)
    return top, out


def member_parts(m):
    """The member's path as parts (no "." parts); ArchiveError for a path or type never unpacked."""
    name = m.name
    if name.startswith("/") or "\\" in name or "\0" in name:
        raise ArchiveError("archive member %r: absolute or odd path; members must lie inside the bundle folder"
                           % name[:200])
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError("archive member %r climbs out of the folder with '..'" % name[:200])
    if m.issym() or m.islnk():
        raise ArchiveError("archive member %r is a %s link; a bundle holds regular files only (tar -h "
                           "copies what links point to)" % (name[:200], "symbolic" if m.issym() else "hard"))
    if m.issparse() or not (m.isfile() or m.isdir()):
        raise ArchiveError("archive member %r is a device, FIFO or sparse file; a bundle holds regular files "
                           "and folders only" % name[:200])
    return parts


def _same_top(top, parts, m):
    if len(parts) == 1 and not m.isdir():
        raise ArchiveError("%s lies beside the bundle folder: the archive must hold one folder; %s"
                           % (parts[0], MAKE_IT))
    if top is not None and parts[0] != top:
        raise ArchiveError("the archive holds more than one folder (%s, %s); push one bundle at a time"
                           % (top, parts[0]))
    if top is None and not FOLDER_NAME.match(parts[0]):
        raise ArchiveError("the bundle folder's name %r must be letters, digits, '.', '_', '+' or '-', "
                           "64 at most, not starting with '.'" % parts[0][:80])
    return parts[0]


def unpack(path, dest, max_bytes):
    """Unpack the bundle archive at path into dest/<its folder> (dest exists, that folder does
    not); returns (folder path, bundle digest). Everything written is fsynced."""
    with _open(path) as tar:
        top, entries = members(tar, max_bytes)
        folder = os.path.join(dest, top)
        os.mkdir(folder, 0o755)
        listing, dirs = [], [folder]
        try:
            for parts, m in entries:
                target = os.path.join(folder, *parts)
                _make_parents(folder, parts[:-1], dirs)
                if m.isdir():
                    if not os.path.isdir(target):
                        os.mkdir(target, 0o755)
                        dirs.append(target)
                    continue
                listing.append(("/".join(parts), _write(tar.extractfile(m), target, m.size)))
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise ArchiveError("the archive is truncated or corrupt (%s); make it again and push it again" % e)
    for d in reversed(dirs):
        fsync_dir(d)
    return folder, listing_digest(listing)


def _open(path):
    """The archive (gzip, bzip2, xz or plain tar), or ArchiveError."""
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
        raise ArchiveError("not a readable .tar.gz archive (%s); %s" % (_first_line(e), MAKE_IT))


def _make_parents(folder, parts, dirs):
    here = folder
    for p in parts:
        here = os.path.join(here, p)
        if not os.path.isdir(here):
            if os.path.lexists(here):
                raise ArchiveError("%s is both a file and a folder in the archive" % os.path.relpath(here, folder))
            os.mkdir(here, 0o755)
            dirs.append(here)


def _write(src, target, size):
    """Copy exactly size bytes from src to a new file target, fsynced; its hex sha256."""
    h = hashlib.sha256()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise ArchiveError("%s is both a file and a folder in the archive" % os.path.basename(target))
    with os.fdopen(fd, "wb") as out:
        got = 0
        for block in iter(lambda: src.read(CHUNK), b""):
            out.write(block)
            h.update(block)
            got += len(block)
        if got != size:
            raise ArchiveError("%s: the archive ends inside it (%d of %d bytes)" % (os.path.basename(target), got, size))
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest()


def _first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0].rstrip(":")


def fsync_dir(path):
    """Make a folder's entries (names created, renamed, removed) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def archive_digest(path, max_bytes=1 << 40):
    """(top folder name, bundle digest) of a bundle archive, as it would be once unpacked; the
    same checks as unpack() (ArchiveError), nothing written."""
    with _open(path) as tar:
        top, entries = members(tar, max_bytes)
        try:
            listing = [("/".join(parts), stream_sha256(tar.extractfile(m))) for parts, m in entries if m.isfile()]
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise ArchiveError("the archive is truncated or corrupt (%s)" % e)
    return top, listing_digest(listing)
