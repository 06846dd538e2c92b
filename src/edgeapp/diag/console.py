"""Text for the serial console: plain ASCII within WIDTH columns, `label     : text` fields, and
colour on the state words only when the output is a terminal."""
import os
import re
import textwrap

WIDTH = 80
LABEL = 10  # "memory   : " - labels are padded to this, then ": "

COLOURS = {"green": "\033[32m", "red": "\033[31m", "yellow": "\033[33m"}
WORD_COLOUR = {
    "READY": "green", "HEALTHY": "green", "PASS": "green", "ready": "green",
    "DOWN": "red", "HUNG": "red", "FAILED": "red", "FAIL": "red", "UNHEALTHY": "red", "ERROR": "red",
    "MISSING": "red", "STARTING": "yellow", "NOT-READY": "yellow", "SKIP": "yellow", "WARNING": "yellow",
}
_STATE_WORD = re.compile(r"\b(%s)\b" % "|".join(re.escape(w) for w in WORD_COLOUR))


def to_ascii(text):
    """Console-safe text: non-ASCII (e.g. OCR text in a log line) becomes '?', controls are dropped."""
    text = text.encode("ascii", "replace").decode("ascii")
    return "".join(c for c in text if c == "\t" or " " <= c <= "~").replace("\t", " ")


def wrap(text, first="", indent=0):
    """text wrapped to WIDTH: the first line starts with first, the others are indented."""
    return textwrap.wrap(to_ascii(text), WIDTH, initial_indent=first, subsequent_indent=" " * indent,
                         break_on_hyphens=False) or [first.rstrip()]


def field(label, text):
    """'label     : text', continuation lines under the text."""
    return wrap(text, label.ljust(LABEL) + ": ", LABEL + 2)


def more(text):
    """A further line of the field above."""
    return wrap(text, " " * (LABEL + 2), LABEL + 2)


def table_row(head, text):
    """A row of a table under a field: head, then text that starts with a 7-wide status word
    ('PASS   ', 'FAILED '); continuation lines go under what follows that word."""
    return wrap(head + text, "", len(head) + 7)


def use_colour(stream):
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def colourise(line):
    def paint(m):
        return COLOURS[WORD_COLOUR[m.group(0)]] + m.group(0) + "\033[0m"
    return _STATE_WORD.sub(paint, line)


def emit(lines, stream, log_from=None):
    """Print lines; on a terminal colour the state words (never inside log lines, which start at
    log_from and end before the closing rule and verdict)."""
    colour = use_colour(stream)
    for i, line in enumerate(lines):
        if colour and (log_from is None or i < log_from or line.startswith("-") or i >= len(lines) - 2):
            line = colourise(line)
        stream.write(line + "\n")
    stream.flush()
