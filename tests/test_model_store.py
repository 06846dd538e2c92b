"""edgeapp.model_store on its own (no server): bundle folders put in place, replaced, taken out and
put back, by the one-step swap and by the two-rename way of file systems that cannot swap, and
recover() after a power cut at each point of the two-rename way."""
import os

import pytest

from edgeapp import model_store
from edgeapp.bundle_digest import folder_digest
from edgeapp.model_store import GONE, OLD, STAGING, ModelStore, recover


def bundle(folder, text):
    os.makedirs(folder)
    with open(os.path.join(folder, "bundle.json"), "w") as f:
        f.write(text)
    return folder


def content(path):
    with open(os.path.join(path, "bundle.json")) as f:
        return f.read()


@pytest.mark.parametrize("swap", [True, False])
def test_place_replace_undo_and_remove(tmp_path, swap):
    store = ModelStore(str(tmp_path), swap=swap)
    dest = bundle(str(tmp_path / "m"), "old")
    staging = store.staging()
    placed = store.place(bundle(os.path.join(staging, "m"), "new"), "m")
    # swapped in one step wherever the file system can (exchanging a path with itself tells)
    assert content(dest) == "new" and placed.swapped == (swap and model_store.exchange(staging, staging))
    placed.undo()  # e.g. the worker could not load it: the old one serves again
    assert content(dest) == "old"
    store.discard(staging)
    staging = store.staging()
    store.place(bundle(os.path.join(staging, "m"), "newer"), "m").commit()
    store.discard(staging)
    assert content(dest) == "newer" and os.listdir(str(tmp_path)) == ["m"]
    store.remove(dest)
    assert os.listdir(str(tmp_path)) == []


def test_a_new_folder_is_one_rename(tmp_path):
    store = ModelStore(str(tmp_path))
    staging = store.staging()
    placed = store.place(bundle(os.path.join(staging, "n"), "new"), "n")
    assert placed.previous is None and content(str(tmp_path / "n")) == "new"
    placed.undo()
    store.discard(staging)
    assert os.listdir(str(tmp_path)) == []


def test_recover_after_a_cut_between_the_two_renames(tmp_path):
    """The old folder renamed aside, the new one not yet in place: the old one comes back."""
    bundle(str(tmp_path / (OLD + "m")), "old")
    bundle(str(tmp_path / (STAGING + "x1") / "m"), "new")
    done = recover(str(tmp_path))
    assert os.listdir(str(tmp_path)) == ["m"] and content(str(tmp_path / "m")) == "old" and len(done) == 2


def test_recover_after_a_cut_once_the_new_one_was_in_place(tmp_path):
    bundle(str(tmp_path / (OLD + "m")), "old")
    bundle(str(tmp_path / "m"), "new")
    bundle(str(tmp_path / (GONE + "x2") / "z"), "deleted")
    recover(str(tmp_path))
    assert os.listdir(str(tmp_path)) == ["m"] and content(str(tmp_path / "m")) == "new"


def test_recover_leaves_a_clean_folder_alone(tmp_path):
    digest = folder_digest(bundle(str(tmp_path / "m"), "same"))
    os.makedirs(str(tmp_path / ".m.tmp-123"))  # build_models.py's, not ours
    assert recover(str(tmp_path)) == []
    assert sorted(os.listdir(str(tmp_path))) == [".m.tmp-123", "m"] and folder_digest(str(tmp_path / "m")) == digest
