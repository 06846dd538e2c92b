"""Helpers of the model push tests: bundle folders made from the built ones, their archives, and
what a board has (its model folder and GET /api/models)."""
import base64
import io
import json
import os
import shutil
import tarfile

import requests

from support import MODEL_DIR

TOKEN = "push-test-token"
SAMPLE = os.path.join(MODEL_DIR, "text-direction", "sample.png")  # text-direction reads "180" on it


def auth(token=TOKEN):
    return {"Authorization": "Bearer " + token}


def model_dir_of(tmp, *names):
    """A model folder with copies of these built bundles (copies: pushes change them)."""
    os.makedirs(str(tmp))
    for name in names:
        shutil.copytree(os.path.join(MODEL_DIR, name), os.path.join(str(tmp), name))
    return tmp


def bundle_from(src, dest, **spec):
    """A copy of the bundle folder src at dest with bundle.json's fields changed (None removes one)."""
    shutil.copytree(str(src), str(dest))
    path = os.path.join(str(dest), "bundle.json")
    with open(path) as f:
        doc = json.load(f)
    for key, value in spec.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return dest


def pack(folder, out):
    """tar czf out -C parent folder."""
    with tarfile.open(str(out), "w:gz") as tar:
        tar.add(str(folder), arcname=os.path.basename(str(folder)))
    return out


def crafted(out, members):
    """A .tar.gz of hand-made members: (TarInfo fields dict, bytes or None)."""
    with tarfile.open(str(out), "w:gz") as tar:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for key, value in fields.items():
                setattr(info, key, value)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


def push(url, archive, token=TOKEN, timeout=120):
    with open(str(archive), "rb") as f:
        return requests.post(url + "/api/models", data=f, headers=dict(auth(token), **{
            "Content-Type": "application/gzip"}), timeout=timeout)


def models(url, token=TOKEN):
    """{id: (name, ready, sha256)} of GET /api/models."""
    data = requests.get(url + "/api/models", headers=auth(token), timeout=30).json()["data"]
    return {m["id"]: (m["name"], m["ready"], m["sha256"]) for m in data}


def board_state(url, model_dir):
    """What a refused push must not change: every name in the model folder (hidden ones too) and
    the models served with their digests."""
    return sorted(os.listdir(str(model_dir))), models(url)


def label(url, mid, token=TOKEN):
    """The label text-direction-like model mid gives the sample; the envelope's code if it fails."""
    with open(SAMPLE, "rb") as f:
        image = base64.b64encode(f.read()).decode()
    r = requests.post(url + "/api/model/service/base64?mid=%d" % mid, json={"image": image}, headers=auth(token),
                      timeout=30)
    doc = r.json()
    return doc["data"]["result"][0]["label"] if doc["code"] == 0 else doc["code"]
