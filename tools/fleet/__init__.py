"""edgeapp-fleet: tools for several boards behind one load balancer, run from a person's machine
(not a board): `haproxy` writes the balancer's configuration, `push` installs a model bundle on
every board. Standard library only, Python 3.8+, so the folder works on any machine with Python."""
