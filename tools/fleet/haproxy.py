"""edgeapp-fleet haproxy: the HAProxy configuration for a list of boards (issue 26)."""


def main(argv):
    raise SystemExit("edgeapp-fleet haproxy: not written yet")
