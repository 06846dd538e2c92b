"""edgeapp-fleet push: install a model bundle archive on every board (issue 26)."""


def main(argv):
    raise SystemExit("edgeapp-fleet push: not written yet")
