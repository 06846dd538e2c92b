"""Model types: one module each, pre-processing + post-processing around Accelerator.run().

Adding a model of a known type is adding a bundle folder; adding a type is adding a module here
with a ModelType subclass (base.py) and one line in TYPES. The other modules are the types' shared
steps: fit.py (resize into the input), tensor.py (normalise into the tensor), base.py.

TYPES is the one registry: edgeapp.bundle checks a bundle's "type" against its names. This file
imports no type module (they import OpenCV), so reading bundles stays cheap (the worker process
and diag read them without OpenCV) and edgeapp.bundle imports nothing that imports it back; a
type's module is imported when a model of that type is first built.
"""
import importlib

TYPES = {
    # bundle.json "type": (module in edgeapp.models, its ModelType class)
    "blazeface": ("blazeface", "FaceDetector"),
    "classify": ("classify", "Classifier"),
    "ctc_rec": ("ctc_rec", "Recognizer"),
    "db_det": ("db_det", "TextDetector"),
    "detection": ("detection", "Detector"),
    "face_rec": ("face_rec", "FaceRecognizer"),
    "ocr": ("ocr", "OcrPipeline"),
}


def type_class(name):
    """The ModelType subclass of a type name (KeyError for a name not in TYPES)."""
    module, cls = TYPES[name]
    return getattr(importlib.import_module("edgeapp.models." + module), cls)


def build(bundle, bundles, gallery=None):
    """The model object for a bundle; bundles lets a pipeline use other bundles' models, and a
    type that names faces (uses_gallery) gets the face gallery (edgeapp.facedb)."""
    cls = type_class(bundle.type)
    return cls(bundle, bundles, gallery) if cls.uses_gallery else cls(bundle, bundles)
