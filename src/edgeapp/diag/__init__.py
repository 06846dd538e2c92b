"""edgeapp-diag: what a person on the board's serial console needs to know, within 2 seconds.

    edgeapp-diag [summary]          version, board, addresses and URLs, service state, models,
                                    the face database, queue, latency, memory, temperature,
                                    disk, last log lines; exit status 1 when the service is not
                                    healthy (a face database that cannot be opened included)
    edgeapp-diag selftest           every model on the sample image in its bundle, through the
                                    running service (in-process when it is down), checked against
                                    the result the bundle expects
    edgeapp-diag config [--shell]   the settings in force and where each comes from

Plain ASCII within 80 columns, colour only on a terminal. The service is asked over HTTP on the
loopback address with short timeouts, so a hung service costs about a second; the pidfile, /proc,
the listening sockets and the log explain a service that is down or hung. Nothing here imports
numpy or Paddle Lite (only an in-process selftest does), so it starts fast on a board.

    client.py    the service over HTTP (ServiceClient, Answer)
    facts.py     gather(): every fact as dataclasses, and the service's state made of them
    logs.py      the service's last log lines (file, syslog or journal)
    console.py   ASCII, 80 columns, fields and colour
    summary.py   the summary's lines from the facts, and the verdict
    selftest.py  the bundled samples through the service or in this process
    cli.py       the commands; main() is the console script `edgeapp-diag`
"""
from edgeapp.diag.cli import main

__all__ = ["main"]
