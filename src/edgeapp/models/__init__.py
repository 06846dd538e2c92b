"""Model types: one module each, pre-processing + post-processing around Accelerator.run().

Adding a model of a known type is adding a bundle folder; adding a type is adding a module here
(and its name to edgeapp.bundle.KNOWN_TYPES). fit.py holds resize helpers, not a type.
"""
from edgeapp.models import blazeface, classify, ctc_rec, db_det, detection, ocr

TYPES = {
    "blazeface": blazeface.FaceDetector,
    "classify": classify.Classifier,
    "ctc_rec": ctc_rec.Recognizer,
    "db_det": db_det.TextDetector,
    "detection": detection.Detector,
    "ocr": ocr.OcrPipeline,
}


def build(bundle, bundles):
    """The model object for a bundle; bundles lets a pipeline use other bundles' models."""
    return TYPES[bundle.type](bundle, bundles)
