"""POST /api/models and DELETE /api/models/<id>: a bundle pushed over the LAN, checked completely
before the installed models are touched, installed atomically, and the worker reloaded.

The steps of a push, each refusing with an error that says why (edgeapp.errors):
1. the body streams into a hidden staging folder of the model folder (same disk; at most
   max_bundle_bytes, never whole in memory);
2. edgeapp.bundle_archive unpacks it, member by member, refusing unsafe archives;
3. bundle.json must be a valid bundle (edgeapp.bundle.Bundle) naming files it has;
4. its id and name must be new, or be the same bundle's (an update); its folder name must be free;
5. model.nb must be built for this board (edgeapp.nb_target);
6. the model is loaded and warmed in a throwaway process (worker_process.trial_load), and what it
   then holds must fit the memory budget next to everything that stays;
7. edgeapp.model_store puts the folder in place atomically, and the server reloads its models; if
   the worker cannot load it after all, the old folder goes back and the reload is done again.
Until step 7 nothing the service reads has changed, so a refused push leaves the old models serving.
"""
import json
import logging
import os
import threading

import numpy as np

from edgeapp import budget, engines, model_store, nb_target
from edgeapp.bundle import Bundle, BundleError, load_bundles
from edgeapp.bundle_archive import ArchiveError, ArchiveTooLarge, unpack
from edgeapp.bundle_digest import DigestCache
from edgeapp.errors import (BadBundle, BundleUnfit, Busy, ModelConflict, ModelDirFailed, PushDisabled, TooLarge,
                            UnknownModel)
from edgeapp.worker_process import trial_load

log = logging.getLogger("edgeapp.models")

ARCHIVE = "bundle.tar.gz"
SETTING = "EDGEAPP_MAX_BUNDLE_BYTES"


def require_token(settings):
    """PushDisabled unless the board has an access token (the plugin has checked the request's)."""
    if not settings.token:
        raise PushDisabled("pushing or deleting models needs an access token, and this board has none: set "
                           "EDGEAPP_TOKEN in its config and restart the service")


class ModelPush:
    """Installs and removes bundles of the model folder while serving. reload() is the server's
    (POST /api/models/reload); failed() the models that do not serve after it, {mid: why} (the
    Engine's: a pipeline whose models are missing fails there, not in the worker)."""

    def __init__(self, settings, accel, reload, failed, digests=None):
        self.settings, self.accel, self.reload, self.failed = settings, accel, reload, failed
        self.digests = digests or DigestCache()
        self._lock = threading.Lock()

    def push(self, receive):
        """Install the bundle archive that receive(out) writes to the binary file out; what was done."""
        require_token(self.settings)
        with self._one_at_a_time():
            staging = self._staging()
            try:
                folder, digest = self._receive(staging, receive)
                b, dest, old = self._check(folder)
                return self._install(b, folder, dest, old, digest)
            finally:
                self.store.discard(staging)

    def delete(self, mid):
        """Remove the bundle with id mid; what was done."""
        require_token(self.settings)
        with self._one_at_a_time():
            installed = self._installed()
            if mid not in installed:
                raise UnknownModel("no bundle with model id %d is installed (GET /api/models lists them)" % mid)
            b = installed[mid]
            digest = self.digests.of(b.folder)
            try:
                self.store.remove(b.folder)
            except OSError as e:
                raise ModelDirFailed("cannot remove %s: %s" % (b.folder, e.strerror or e))
            done = self.reload()
            log.info("model %d (%s) removed from %s", mid, b.name, b.folder)
            return {"action": "removed", "id": mid, "name": b.name, "folder": os.path.basename(b.folder),
                    "sha256": digest, "reload": done}

    @property
    def store(self):
        return model_store.ModelStore(self.settings.model_dir)

    # -- the steps ---------------------------------------------------------------------------
    def _one_at_a_time(self):
        if not self._lock.acquire(blocking=False):
            raise Busy("another model push or delete is under way on this board; retry when it is done",
                       retry_after=5)
        return _Held(self._lock)

    def _staging(self):
        try:
            return self.store.staging()
        except OSError as e:
            raise ModelDirFailed("the model folder %s cannot be written (%s): pushed models need a writable "
                                 "model folder (EDGEAPP_MODEL_DIR)" % (self.settings.model_dir, e.strerror or e))

    def _receive(self, staging, receive):
        """(unpacked folder, its digest): the body to disk, then unpacked, every member checked."""
        archive = os.path.join(staging, ARCHIVE)
        limit = self.settings.max_bundle_bytes
        try:
            with open(archive, "wb") as out:
                receive(out)
            folder, digest = unpack(archive, staging, limit)
            os.remove(archive)  # room on the disk for the reload
        except ArchiveTooLarge as e:
            raise TooLarge(str(e))
        except ArchiveError as e:
            raise BadBundle("bundle archive refused: %s" % e)
        except OSError as e:
            raise ModelDirFailed("writing the bundle to %s failed: %s (is the disk full?)"
                                 % (self.settings.model_dir, e.strerror or e))
        return folder, digest

    def _check(self, folder):
        """(Bundle, destination folder name, installed bundle it replaces or None): every check
        but loading it."""
        b = read_bundle(folder)
        installed = self._installed()
        dest, old = destination(b, os.path.basename(folder), installed, self.settings.model_dir)
        nb = b.model_files.get(engines.PADDLELITE)
        why = nb_target.mismatch(nb, b.target) if nb else None
        if why:
            raise BundleUnfit("bundle %s (model %d) refused: %s" % (b.name, b.id, why))
        if b.runs_model:
            self._check_slots(b, "input tensor", 4 * int(np.prod(b.input_shape)), 0)
            self._trial(b, old)
        return b, dest, old

    def _check_slots(self, b, what, need, part):
        """BundleUnfit when the model's `what` (need bytes) does not fit its part of the worker's
        slots (0: inputs, 1: outputs), which are sized when the service starts."""
        room = getattr(self.accel, "slot_room", None)  # an in-process accelerator has no slots
        if room is None:
            return
        have = room()[part]
        if need > have:
            raise BundleUnfit("bundle %s (model %d) refused: its %s (%d bytes) does not fit this board's "
                              "accelerator slots (%d bytes), which are sized when the service starts for the "
                              "largest model it has. Set EDGEAPP_SLOT_BYTES=%d (or more) and restart the service, "
                              "then push it again" % (b.name, b.id, what, need, have, need))

    def _trial(self, b, old):
        """Load and warm it in a throwaway process; it must work and fit the memory budget."""
        why, status = trial_load(b, self.accel.options)
        if why:
            raise BadBundle("bundle %s (model %d) refused: it does not load here: %s" % (b.name, b.id, why))
        self._check_slots(b, "outputs", status.get("output_bytes") or 0, 1)
        room = self.settings.memory_budget_mb
        if not room:
            return
        fig = budget.measure(self.accel, self.settings)
        freed = (self.accel.model_status().get(old.id, {}).get("memory_mb") or 0.0) if old else 0.0
        need = fig["total_mb"] - freed + (status.get("memory_mb") or 0.0)
        if need > room:
            raise BundleUnfit("bundle %s (model %d) refused: it holds %.0f MB once warmed; with it edgeapp would "
                              "need %.0f MB, over the memory budget of %d MB (EDGEAPP_MEMORY_BUDGET_MB). Delete "
                              "a model first (DELETE /api/models/<id>) or raise the budget"
                              % (b.name, b.id, status.get("memory_mb") or 0.0, need, room))

    def _install(self, b, folder, dest, old, digest):
        """Put it in place and reload; the old folder back if the worker cannot load it after all."""
        previous = self.digests.of(old.folder) if old is not None else None
        try:
            placed = self.store.place(folder, dest)
        except OSError as e:
            raise ModelDirFailed("installing %s failed: %s" % (dest, e.strerror or e))
        done = self.reload()
        why = done.get("failed", {}).get(b.id) or self.failed().get(b.id)
        if why:
            placed.undo()
            self.reload()
            raise BundleUnfit("bundle %s (model %d) was installed but the service could not load it (%s); "
                              "the models before it serve again" % (b.name, b.id, why))
        placed.commit()
        self.digests.remember(placed.dest, digest)
        action = "replaced" if old is not None else "added"
        log.info("model %d (%s) %s from a push: %s, sha256 %s", b.id, b.name, action, placed.dest, digest)
        return {"action": action, "id": b.id, "name": b.name, "folder": dest, "sha256": digest,
                "previous_sha256": previous, "reload": done}

    def _installed(self):
        return load_bundles(self.settings.model_dir, errors={})


class _Held:
    """The push lock, held for a with-block (taken without waiting by _one_at_a_time)."""

    def __init__(self, lock):
        self._lock = lock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._lock.release()


def read_bundle(folder):
    """The Bundle of an unpacked folder, its files present; BadBundle otherwise."""
    path = os.path.join(folder, "bundle.json")
    name = os.path.basename(folder)
    if not os.path.isfile(path):
        raise BadBundle("bundle archive refused: %s/ has no bundle.json; push the folder tools/bundle.py or "
                        "tools/build_models.py wrote" % name)
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        b = Bundle(folder, spec)
    except (ValueError, RecursionError) as e:
        raise BadBundle("bundle archive refused: %s/bundle.json is not valid JSON (%s)" % (name, e))
    except BundleError as e:
        raise BadBundle("bundle archive refused: %s" % str(e).replace(folder, name + "/"))
    for key, path in sorted(b.model_files.items()):
        rel = os.path.relpath(path, folder)
        if rel.startswith("..") or not os.path.isfile(path):
            raise BadBundle("bundle archive refused: bundle.json names %s as its %s model file, and %s/ has no "
                            "such file" % (rel, key, name))
    return b


def destination(b, name, installed, model_dir):
    """(folder name to install into, installed Bundle it replaces or None); ModelConflict when
    the id, the name or the folder belongs to another bundle."""
    same_id = installed.get(b.id)
    if same_id is not None:
        if same_id.name != b.name:
            raise ModelConflict("model id %d is already %s (folder %s): a bundle replaces only the one of its own "
                                "name; give the new one another id, or delete %d first (DELETE /api/models/%d)"
                                % (b.id, same_id.name, os.path.basename(same_id.folder), b.id, b.id))
        return os.path.basename(same_id.folder), same_id
    for other in installed.values():
        if other.name == b.name:
            raise ModelConflict("the name %s is already model %d's; a bundle keeps its id when it is updated: push "
                                "it with id %d, or rename it" % (b.name, other.id, other.id))
    if os.path.lexists(os.path.join(model_dir, name)):
        raise ModelConflict("the model folder already has a folder %s (not a bundle of this name); rename the "
                            "bundle's folder" % name)
    return name, None
