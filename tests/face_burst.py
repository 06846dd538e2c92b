"""A burst of face registers and deletes on a FaceGallery, for tests/test_facedb_powercut.py:
`python tests/face_burst.py DB SEED USERS=COUNT,...` runs operations() until it is killed, writing
"b N" to stdout before operation N and "d N" once it returned (unbuffered: what the killer reads
afterwards is exactly what was acknowledged).

The operations are a function of the seed and of the people in the database at the start, so the
test computes the same ones and knows what each acknowledged operation did.
"""
import os
import sys

import numpy as np

from edgeapp.facedb import FaceGallery, unit_rows

MODEL = "burst==1"
DIM = 1024
PEOPLE = ["p%d" % i for i in range(8)]
MAX_USERS = len(PEOPLE)
MAX_PER_USER = 6
OPERATIONS = 100000


def operations(seed, counts):
    """Yield (index, "register", userid, rows) or (index, "delete", userid, None), each valid when
    the ones before it were done: counts {userid: faces} is updated as they are yielded."""
    rng = np.random.default_rng(seed)
    counts = dict(counts)
    for i in range(OPERATIONS):
        userid = PEOPLE[int(rng.integers(len(PEOPLE)))]
        have = counts.get(userid, 0)
        n = int(rng.integers(1, 4))
        if have + n > MAX_PER_USER or (have and rng.random() < 0.3):
            counts.pop(userid, None)
            yield i, "delete", userid, None
        else:
            counts[userid] = have + n
            rows = np.random.default_rng([seed, i]).standard_normal((n, DIM))
            yield i, "register", userid, unit_rows(rows, DIM)


def main(path, seed, counts):
    g = FaceGallery(path, MAX_USERS, MAX_PER_USER)
    g.use_model(MODEL, DIM)
    os.write(1, b"ready\n")
    for i, op, userid, rows in operations(seed, counts):
        os.write(1, b"b %d\n" % i)
        if op == "register":
            g.register(userid, rows, MODEL)
        else:
            g.delete(userid)
        os.write(1, b"d %d\n" % i)


def parse_counts(text):
    return {k: int(v) for k, v in (p.split("=") for p in text.split(",") if p)}


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), parse_counts(sys.argv[3] if len(sys.argv) > 3 else ""))
