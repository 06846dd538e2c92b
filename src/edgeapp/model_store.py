"""Bundle folders put into and taken out of the model folder so that no reader, and no restart
after a power cut, ever sees one half-written.

A new bundle is written aside first, in a hidden staging folder of the model folder (same file
system; load_bundles skips names that start with "."), every file and folder fsynced. Then:
- a new folder is renamed into place (one rename: there or not);
- a folder that replaces another is swapped with it in one step (Linux renameat2 with
  RENAME_EXCHANGE): the old content lands in the staging folder, which is removed afterwards.
  Where the file system cannot swap, the old folder is first renamed to ".edgeapp-old-<name>",
  then the new one into place; recover() puts the old one back if the power went between the two;
- a removed folder is renamed into a hidden ".edgeapp-gone-*" folder, then deleted.
The model folder itself is fsynced after each rename. recover(), run at start before the bundles
are read, finishes or undoes whatever a power cut interrupted: the model folder then holds each
bundle old or new, whole.
"""
import ctypes
import errno
import logging
import os
import shutil
import tempfile

from edgeapp.bundle_archive import fsync_dir

log = logging.getLogger("edgeapp.models")

STAGING = ".edgeapp-push-"
OLD = ".edgeapp-old-"
GONE = ".edgeapp-gone-"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(a, b):
    """Swap two paths in one step (renameat2 RENAME_EXCHANGE). False where the kernel, the C
    library or the file system cannot; OSError for any other failure."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), a)


class Placed:
    """A bundle folder just put in place. commit() drops what it replaced; undo() puts that back
    (or takes a new one out again), e.g. when the worker cannot load what was installed."""

    def __init__(self, store, dest, previous, swapped):
        self.store, self.dest = store, dest
        self.previous = previous  # where the replaced content is now; None: nothing was replaced
        self.swapped = swapped    # previous is the staging copy (exchange) rather than an OLD folder

    def commit(self):
        if self.previous is not None:
            self.store.discard(self.previous)

    def undo(self):
        """Back to the folder as it was before place(): the old content in place again (or the new
        folder taken out), the new content deleted (or left in the staging folder, to discard)."""
        if self.swapped:
            exchange(self.previous, self.dest)
            fsync_dir(self.store.model_dir)
            return
        aside = self.store.aside_path(self.dest)
        os.rename(self.dest, aside)
        if self.previous is not None:
            os.rename(self.previous, self.dest)
        fsync_dir(self.store.model_dir)
        self.store.discard(aside)


class ModelStore:
    """The model folder as a place to install bundles into (see the module's text)."""

    def __init__(self, model_dir, swap=True):
        self.model_dir = model_dir
        self.swap = swap  # False: the two-rename way only (tests of the fallback)

    def staging(self):
        """A new hidden staging folder in the model folder (OSError if it cannot be written)."""
        return tempfile.mkdtemp(prefix=STAGING, dir=self.model_dir)

    def aside_path(self, dest):
        """A hidden place in the model folder for content that goes: removed after the operation,
        or by recover() after a power cut."""
        return os.path.join(tempfile.mkdtemp(prefix=GONE, dir=self.model_dir), os.path.basename(dest))

    def place(self, staged, name):
        """Put the fsynced folder `staged` (in a staging folder) at model_dir/name: added, or
        replacing the folder there. Returns a Placed."""
        dest = os.path.join(self.model_dir, name)
        if not os.path.lexists(dest):
            os.rename(staged, dest)
            fsync_dir(self.model_dir)
            return Placed(self, dest, None, False)
        if self.swap and exchange(staged, dest):
            fsync_dir(self.model_dir)
            fsync_dir(os.path.dirname(staged))
            return Placed(self, dest, staged, True)
        old = os.path.join(self.model_dir, OLD + name)
        self.discard(old)  # a leftover, if recover() could not remove it
        os.rename(dest, old)
        fsync_dir(self.model_dir)
        os.rename(staged, dest)
        fsync_dir(self.model_dir)
        return Placed(self, dest, old, False)

    def remove(self, folder):
        """Take a bundle folder out of the model folder (one rename), then delete it."""
        aside = self.aside_path(folder)
        os.rename(folder, aside)
        fsync_dir(self.model_dir)
        self.discard(aside)

    def discard(self, path):
        """Delete a folder of ours (staging, old, gone) and its hidden parent if that is ours too."""
        parent = os.path.dirname(path)
        if os.path.basename(parent).startswith((STAGING, GONE)):
            path = parent
        if os.path.lexists(path):
            shutil.rmtree(path, ignore_errors=True)
            try:
                fsync_dir(self.model_dir)
            except OSError:
                pass


def recover(model_dir):
    """Finish or undo what a power cut interrupted (see the module's text); returns what was done,
    one line each, for the log. Run before the bundles are read."""
    done = []
    names = sorted(os.listdir(model_dir))
    for name in names:
        path = os.path.join(model_dir, name)
        if name.startswith(OLD):
            dest = os.path.join(model_dir, name[len(OLD):])
            if os.path.lexists(dest):
                shutil.rmtree(path, ignore_errors=True)
                done.append("removed %s: the bundle that replaced it was already in place" % name)
            else:
                os.rename(path, dest)
                done.append("put %s back as %s: the power went while it was being replaced" % (name, dest))
    for name in names:
        if name.startswith((STAGING, GONE)):
            shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
            done.append("removed %s, left by an interrupted model push or delete" % name)
    if done:
        fsync_dir(model_dir)
    return done
