"""The boards an edgeapp-fleet command is given: host:port arguments, or @FILE for a file of them
(one per line, # comments). Standard library only."""
import re

DEFAULT_PORT = 9876  # the service's (and the EdgeBoard document's) port
_BOARD = re.compile(r"^(?:https?://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::([0-9]{1,5}))?/?$")


class BoardError(ValueError):
    pass


def parse_board(text):
    """(host, port) of "host", "host:port" or "http://host:port"."""
    m = _BOARD.match(text.strip())
    if not m or (m.group(2) and not 0 < int(m.group(2)) < 65536):
        raise BoardError("%r is not a board address; write host:port, e.g. 192.168.1.20:9876" % text)
    return m.group(1), int(m.group(2) or DEFAULT_PORT)


def read_boards(args):
    """[(host, port)] of the arguments, @FILE expanded; BoardError for a bad one or none at all."""
    out = []
    for arg in args:
        if arg.startswith("@"):
            try:
                with open(arg[1:], encoding="utf-8") as f:
                    lines = [line.split("#", 1)[0].strip() for line in f]
            except OSError as e:
                raise BoardError("cannot read the board list %s: %s" % (arg[1:], e.strerror or e))
            out += [parse_board(line) for line in lines if line]
        else:
            out.append(parse_board(arg))
    if not out:
        raise BoardError("no board given: name them as host:port, or @FILE for a file of them")
    return out


def board_name(board):
    return "%s:%d" % board
