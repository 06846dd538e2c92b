"""edgeapp-fleet: tools for several boards behind one load balancer, run from a person's machine
(not a board): `haproxy` writes the balancer's configuration, `push` installs a model bundle on
every board. Standard library only, Python 3.8+, so the folder works on any machine with Python."""
import os
import sys

# edgeapp's standard-library modules (bundle_archive, errors, config) from this checkout's src/:
# the folder is used from a checkout, where the service is not installed.
_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))), "src")
if os.path.isdir(_SRC) and _SRC not in sys.path:
    sys.path.insert(0, _SRC)
