"""A serial console on a pipe, as a person at the board's UART uses it: read what the board
prints (every byte also goes to a transcript file), wait for a pattern with a bound, type a line.

The pure pieces (clean, LOGIN_PROMPT, command_line, command_result) are what tests check on a
recorded transcript; Console is the live side, around a process's stdin and stdout.
"""
import codecs
import os
import re
import threading
import time

# The getty's prompt ("edgeboard-qemu login: "); a kernel message may follow it on the line.
LOGIN_PROMPT = re.compile(r"^(?!Last )\S+ login: ", re.M)
PASSWORD_PROMPT = re.compile(r"Password: ")
# root's shell prompt (bash's "root@edgeboard-qemu:~# "): login has flushed what was typed ahead.
SHELL_PROMPT = re.compile(r"root@[\w.-]+:[^\n]*# ")
# What the board prints when its (re)boot starts.
KERNEL_START = re.compile(r"Booting Linux on physical CPU")
# The end of a typed command's output: its exit status behind a marker that the echo of the typed
# line cannot match (the echo shows "$?", not digits).
_DONE = re.compile(r"@@rc=(\d+)@@")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r")
_ANSI_START = re.compile(r"\x1b(\[[0-9;?]*|[()])?$")


def clean(text):
    """Console text without colour codes, cursor controls and carriage returns."""
    return _ANSI.sub("", text)


def split_clean(text):
    """(clean text, the unfinished control sequence at its end, kept for the next read): a read
    may end inside a colour code."""
    m = _ANSI_START.search(text)
    if m is None:
        return clean(text), ""
    return clean(text[:m.start()]), text[m.start():]


def command_line(command):
    """The line typed for command: it, then its exit status behind the marker."""
    return '%s; echo "@@rc=$?@@"\n' % command


def command_result(text):
    """(exit status, output) of the first typed command in console text that starts at the echo
    of its line, or None while it has not finished. The output is the lines between the echo of
    the typed line and the marker."""
    m = _DONE.search(text)
    if m is None:
        return None
    lines = text[:m.start()].split("\n")
    return int(m.group(1)), "\n".join(lines[1:]).rstrip("\n")


class ConsoleTimeout(Exception):
    pass


class Console:
    """proc's stdout read by a thread into a transcript file and a buffer of cleaned text."""

    def __init__(self, proc, transcript):
        self.proc = proc
        self.text = ""
        self.cond = threading.Condition()
        self.file = open(transcript, "wb")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        fd = self.proc.stdout.fileno()
        utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        rest = ""
        while True:
            data = os.read(fd, 4096)
            if not data:
                break
            self.file.write(data)
            self.file.flush()
            text, rest = split_clean(rest + utf8.decode(data))
            with self.cond:
                self.text += text
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def mark(self):
        """Where the text ends now: wait_for(..., since=mark()) sees only what comes after."""
        with self.cond:
            return len(self.text)

    def wait_for(self, pattern, timeout, since=0):
        """The match of pattern (a compiled regex) in the text after since, waiting at most timeout
        seconds; ConsoleTimeout if it does not come, or the process ends first."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                m = pattern.search(self.text, since)
                if m is not None:
                    return m
                left = end - time.monotonic()
                if left <= 0 or (not self.reader.is_alive()):
                    why = "qemu exited" if not self.reader.is_alive() else "%d s passed" % timeout
                    raise ConsoleTimeout("no %r on the console: %s" % (pattern.pattern, why))
                self.cond.wait(min(left, 1.0))

    def type(self, text, pace=0.02):
        """Type text a few characters at a time, as the UART takes it."""
        data = text.encode()
        for i in range(0, len(data), 8):
            self.proc.stdin.write(data[i:i + 8])
            self.proc.stdin.flush()
            time.sleep(pace)

    def run(self, command, timeout):
        """(exit status, output) of a command typed at the shell prompt."""
        since = self.mark()
        self.type(command_line(command))
        self.wait_for(_DONE, timeout, since)
        with self.cond:
            return command_result(self.text[since:])

    def between(self, start, end):
        """The text from mark start to mark end."""
        with self.cond:
            return self.text[start:end]

    def tail(self, lines=40):
        with self.cond:
            return "\n".join(self.text.rstrip("\n").split("\n")[-lines:])

    def close(self):
        self.reader.join(5)
        self.file.close()
