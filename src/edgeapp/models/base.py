"""The model-type base class: what every type is built from, and what a type may provide.

The engine and the CLI call these methods on any model without asking whether it has them; a type
overrides what differs from the defaults.
"""


class ModelType:
    """One model type (a bundle.json "type", registered in edgeapp.models.TYPES), built once per
    bundle by edgeapp.models.build(bundle, bundles).

    A type provides infer(). The rest has defaults:
    - needs(): the ids of the bundles whose predictors it runs: its own (a pipeline runs others' too);
    - reduction(w, h): how much smaller a w x h JPEG may be decoded for it (engine.Engine.decode).
      A type that fits images into its input sets self.fit (edgeapp.models.fit.Fit), which knows;
      without one (OCR: its crops need every pixel) images are decoded full size.
    """

    fit = None
    uses_gallery = False  # True: built with the face gallery as a third argument (face_rec)

    def __init__(self, bundle, bundles=None):
        self.bundle = bundle

    def infer(self, image, accel):
        """The EdgeBoard result list for one image (HWC uint8 BGR), run against accel."""
        raise NotImplementedError("model type %s has no infer()" % type(self).__name__)

    def needs(self):
        return [self.bundle.id]

    def reduction(self, w, h):
        return 1 if self.fit is None else self.fit.reduction(w, h)

    def label(self, index):
        """label_list[index], or the index as text when the list is shorter."""
        labels = self.bundle.labels
        return labels[index] if 0 <= index < len(labels) else str(index)


def needed_bundle(bundles, mid, role, owner):
    """The bundle a pipeline (owner) names by id for a role ("detector", ...), or a ValueError
    that says which model is missing."""
    try:
        return bundles[int(mid)]
    except (KeyError, TypeError, ValueError):
        raise ValueError("bundle %d (%s) names %s model %r, which is not installed"
                         % (owner.id, owner.name, role, mid))
