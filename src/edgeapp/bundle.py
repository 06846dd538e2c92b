"""Model bundles: a folder with bundle.json (what the model is) and the built model file.

A source bundle lives under models/<name>/; tools/build_models.py turns it into a built bundle
under build/models/<target>/<name>/, adding "model" (the .nb file for Paddle Lite), "onnx_model"
(model.onnx for ONNX Runtime) and "target". An optional "engine" pins the bundle to one engine.
The service reads built bundles only.
"""
import json
import os

from edgeapp import engines  # names only: no runtime is imported
from edgeapp.models import TYPES  # the registry alone: no type module, no OpenCV


class BundleError(Exception):
    pass


class Bundle:
    def __init__(self, folder, spec):
        self.folder = folder
        self.spec = spec
        try:
            self.id = int(spec["id"])
            self.name = str(spec["name"])
            self.type = str(spec["type"])
            self.input_shape = [int(x) for x in spec["input_shape"]]
        except (KeyError, TypeError, ValueError) as e:
            raise BundleError("%s: bundle.json needs id, name, type and input_shape (%s)" % (folder, e))
        if self.type not in TYPES:
            raise BundleError("%s: unknown model type %r (known: %s)" % (folder, self.type, ", ".join(TYPES)))
        if len(self.input_shape) != 4 or self.input_shape[0] != 1 or self.input_shape[1] != 3:
            raise BundleError("%s: input_shape must be [1, 3, H, W], got %r" % (folder, self.input_shape))
        self.description = spec.get("description", "")
        self.accuracy = spec.get("accuracy")  # the measured figure, as the README's zoo table gives it
        self.pre = spec.get("Preprocess", {})
        self.post = spec.get("PostProcess", {})
        self.labels = [str(x) for x in spec.get("label_list", [])]
        self.target = spec.get("target")
        # engine name -> its model file in this bundle (only the engines it has a file for)
        self.model_files = {name: os.path.join(folder, spec[key])
                            for name, key in engines.FILE_KEYS.items() if spec.get(key)}
        self.engine = spec.get("engine")
        if self.engine is not None and self.engine not in engines.NAMES:
            raise BundleError("%s: unknown engine %r (known: %s)" % (folder, self.engine, ", ".join(engines.NAMES)))
        if self.engine and self.engine not in self.model_files:
            raise BundleError("%s: \"engine\" is %s, but bundle.json names no %s file (\"%s\")"
                              % (folder, self.engine, self.engine, engines.FILE_KEYS[self.engine]))

    @property
    def runs_model(self):
        """True for a bundle with a model file of its own (not a pipeline of other bundles)."""
        return bool(self.model_files)

    def file(self, name):
        """Path of an extra file shipped in the bundle (e.g. a character dictionary)."""
        return os.path.join(self.folder, name)

    @property
    def max_hw(self):
        return self.input_shape[2], self.input_shape[3]

    def describe(self):
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "accuracy": self.accuracy,
            "input_shape": self.input_shape,
            "labels": self.labels,
            "target": self.target,
            "engines": sorted(self.model_files),
        }


def load_bundles(model_dir, errors=None):
    """All bundles under model_dir, by id. Raises BundleError on a broken or duplicated bundle.

    With errors (a dict), a broken folder is skipped and recorded as errors[folder] = reason instead,
    so one bad bundle dropped into the dir (tools/bundle.py, a reload) does not stop the others.
    """
    if not os.path.isdir(model_dir):
        raise BundleError("model directory %s does not exist (run `make setup` to build the bundles)" % model_dir)
    bundles = {}
    for name in sorted(os.listdir(model_dir)):
        folder = os.path.join(model_dir, name)
        path = os.path.join(folder, "bundle.json")
        if name.startswith(".") or not os.path.isfile(path):
            continue  # ".<name>.tmp-*": a bundle being written by build_models.py or tools/bundle.py
        try:
            try:
                with open(path, encoding="utf-8") as f:
                    spec = json.load(f)
            except ValueError as e:
                raise BundleError("%s: not valid JSON (%s)" % (path, e))
            b = Bundle(folder, spec)
            if b.id in bundles:
                raise BundleError("model id %d is used by both %s and %s" % (b.id, bundles[b.id].folder, folder))
        except BundleError as e:
            if errors is None:
                raise
            errors[folder] = str(e)
            continue
        bundles[b.id] = b
    return bundles
