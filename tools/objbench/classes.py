"""COCO's 80 object classes by the names DeepStack answers with, and the groups the benchmark
reports them in (people, vehicles, animals, everyday objects)."""

COCO_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)

PEOPLE = "people"
VEHICLES = "vehicles"
ANIMALS = "animals"
EVERYDAY = "everyday objects"
OTHER = "not COCO"  # a label a detector gives that is none of the 80 (the face model's "face")
GROUPS = (PEOPLE, VEHICLES, ANIMALS, EVERYDAY)

_GROUP_OF = {"person": PEOPLE}
_GROUP_OF.update((name, VEHICLES) for name in
                 ("bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"))
_GROUP_OF.update((name, ANIMALS) for name in
                 ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"))


def group_of(label):
    """The report group of a class name; OTHER for a name that is not one of COCO_NAMES."""
    if label not in COCO_NAMES:
        return OTHER
    return _GROUP_OF.get(label, EVERYDAY)
