"""The boot test's console reading (tools/arm/serial_console.py) and its QEMU command line, on a
piece of a real transcript of `make boot-test` (the emulated board's serial console), without
booting anything."""
import re
import subprocess
from pathlib import Path

import pytest

from tools.arm.boot_test import qemu_command
from tools.arm.serial_console import (KERNEL_START, LOGIN_PROMPT, PASSWORD_PROMPT, SHELL_PROMPT, clean, command_result,
                                     split_clean)

REPO = Path(__file__).resolve().parents[1]

# From build/arm/boot/console-sysv.log (sysvinit, first boot), as the UART sent it: carriage
# returns, bash's bracketed-paste switches, the colours of edgeapp-diag on a terminal, the
# service's ready banner (EDGEAPP_CONSOLE=/dev/console) landing after the shell prompt.
TRANSCRIPT = (
    b"\rINIT: Entering runlevel: 2\r\r\n"
    b"Starting edgeapp (engine onnxruntime): supervisor pid 796; the models are loading (edgeapp-diag shows progress)\r\n"
    b"\r\r\nDebian GNU/Linux 12 edgeboard-qemu ttyAMA0\r\n\r\n"
    b"edgeboard-qemu login: root\r\r\nPassword: \r\n"
    b"\x1b[?2004hroot@edgeboard-qemu:~# edgeapp 0.1.0 ready on qemu-aarch64: http://10.0.2.15:9876/ (3 of 3 models ready on onnxruntime)\r\n"
    b"edgeapp-diag; echo \"@@rc=$?@@\"\r\n"
    b"\x1b[?2004l\redgeapp 0.1.0 - board qemu-aarch64 - 2026-12-07 13:31:22\r\n"
    b"service   : \x1b[32mREADY\x1b[0m, pid 853, up 29s, supervisor 796, port 9876 listening\r\n"
    b"models    : 3 ready, 0 failed\r\n"
    b"\x1b[32mHEALTHY\x1b[0m: service \x1b[32mready\x1b[0m, every model \x1b[32mready\x1b[0m\r\n"
    b"@@rc=0@@\r\n"
    b"\x1b[?2004hroot@edgeboard-qemu:~# reboot\r\n"
    b"Last login: Mon Dec  7 13:29:50 UTC 2026 on ttyAMA0\r\n"
    b"[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd034]\r\n"
)


def read_in_pieces(data, size):
    """What Console's reader makes of data arriving size bytes at a time."""
    text, rest = "", ""
    for i in range(0, len(data), size):
        piece, rest = split_clean(rest + data[i:i + size].decode("latin-1"))
        text += piece
    return text + rest


@pytest.mark.parametrize("size", [1, 7, 64, len(TRANSCRIPT)])
def test_reads_cut_inside_colour_codes_give_the_same_text(size):
    text = read_in_pieces(TRANSCRIPT, size)
    assert text == clean(TRANSCRIPT.decode())
    assert "\x1b" not in text and "\r" not in text
    assert "\nHEALTHY: service ready, every model ready\n" in text


def test_prompts_and_the_kernel_start_are_found():
    text = clean(TRANSCRIPT.decode())
    logins = [m.group(0) for m in LOGIN_PROMPT.finditer(text)]
    assert logins == ["edgeboard-qemu login: "]  # not "Last login: " of the message of the day
    password = PASSWORD_PROMPT.search(text, text.index("login: "))
    assert SHELL_PROMPT.search(text, password.end()).group(0) == "root@edgeboard-qemu:~# "
    assert KERNEL_START.search(text).start() > text.index("reboot")


def test_a_typed_command_gives_its_status_and_output():
    text = clean(TRANSCRIPT.decode())
    rc, out = command_result(text[text.index("edgeapp-diag; echo"):])
    assert rc == 0
    assert out.split("\n")[0] == "edgeapp 0.1.0 - board qemu-aarch64 - 2026-12-07 13:31:22"
    assert out.split("\n")[-1] == "HEALTHY: service ready, every model ready"
    assert command_result("edgeapp-diag; echo \"@@rc=$?@@\"\nedgeapp 0.1.0 - board") is None  # still running


def test_the_service_port_is_forwarded_from_localhost_only():
    cmd = qemu_command("k", "disk.ext4", 40123)
    netdev = cmd[cmd.index("-netdev") + 1]
    assert re.fullmatch(r"user,id=net,hostfwd=tcp:127\.0\.0\.1:40123-:9876", netdev)
    assert cmd[cmd.index("-append") + 1] == "root=/dev/vda rw console=ttyAMA0"


@pytest.mark.parametrize("args,message", [
    (["out", "root", "tree", "upstart"], "init must be sysv or systemd"),
    (["out", "no-such-root", "tree"], "is not a built arm64 root"),
])
def test_the_image_script_refuses_bad_arguments(tmp_path, args, message):
    proc = subprocess.run(["sh", str(REPO / "tools/arm/bootimage.sh")] + [str(tmp_path / a) for a in args[:3]] + args[3:],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
    assert proc.returncode == 2
    assert message in proc.stdout
