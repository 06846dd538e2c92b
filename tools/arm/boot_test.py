"""The emulated board booted for real: `make boot-test`.

Boots the image of tools/arm/bootimage.sh with the kernel and initrd of tools/arm/kernel.sh in
qemu-system-aarch64 (QEMU's virt machine, Cortex-A53, 2 CPUs, 2 GB) with its serial console on a
pipe, and does what a person at the board would: waits for the login prompt, logs in, types
`edgeapp-diag` and checks it says HEALTHY; sends inference requests from this machine through a
forwarded port (127.0.0.1 only) and checks the answers (labels, faces); types `reboot`, checks
that the init script brings the service back; types `poweroff` and waits for QEMU to exit.

Every wait has a bound. The whole console goes to OUT/console-INIT.log, the times (boot to login
prompt, boot to the first healthy answer, for both boots) to OUT/times-INIT.json and stdout. On a
failure it prints the console's tail and exits 1; QEMU is killed whatever happens.

    python -m tools.arm.boot_test --kernel build/arm/boot/kernel --image build/arm/boot/rootfs-sysv.ext4
"""
import argparse
import base64
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2

from tools import build_models
from tools.arm.serial_console import (KERNEL_START, LOGIN_PROMPT, PASSWORD_PROMPT, SHELL_PROMPT, Console,
                                     ConsoleTimeout)
from tools.launch import free_port

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "edgeapp"  # the test image's root password (tools/arm/bootimage.sh)
# Bounds, seconds: generous for an emulated CPU on a busy 2-core host (an idle one boots to the
# login prompt in about a minute).
BOOT_S = 600       # QEMU start or reboot -> login prompt
READY_S = 900      # -> the service's first healthy answer
COMMAND_S = 300    # one command typed at the shell
REQUEST_S = 300    # one inference request
SHUTDOWN_S = 300   # `reboot` -> the kernel starts again; `poweroff` -> QEMU exits


# What the console shows when `reboot` stops the service by its init script or unit (for sysv,
# not "Stopping edgeapp: not running": something killed it before).
STOPPED = {"sysv": re.compile(r"Stopping edgeapp: stopped"),
           "systemd": re.compile(r"Stopped edgeapp\.service")}


class BootTestFailed(Exception):
    pass


def qemu_command(kernel_dir, image, port, cpus=2, memory_mb=2048):
    """The board: virt machine, a virtio disk and network card (MMIO, as the initrd's modules
    expect), the serial console on stdio and nothing else; the service's port forwarded from
    127.0.0.1 only."""
    kernel_dir = Path(kernel_dir)
    return ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-smp", str(cpus),
            "-m", str(memory_mb), "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "stdio", "-kernel", str(kernel_dir / "vmlinuz"),
            "-initrd", str(kernel_dir / "initrd.img"), "-append", "root=/dev/vda rw console=ttyAMA0",
            "-drive", "if=none,id=disk,format=raw,file=%s" % image,
            "-device", "virtio-blk-device,drive=disk",
            "-netdev", "user,id=net,hostfwd=tcp:127.0.0.1:%d-:9876" % port,
            "-device", "virtio-net-device,netdev=net"]


class Health:
    """Polls the service's /api/health through the forwarded port from a thread and keeps the
    time of the first ready answer since start()."""

    def __init__(self, port):
        self.url = "http://127.0.0.1:%d/api/health" % port
        self.ready_at = None
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.thread = None

    def start(self, t0):
        self.stop_polling()
        self.stop.clear()
        self.ready.clear()
        self.ready_at = None
        self.thread = threading.Thread(target=self._poll, args=(t0,), daemon=True)
        self.thread.start()

    def _poll(self, t0):
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=10) as r:
                    if (json.load(r).get("data") or {}).get("ready"):  # in the EdgeBoard envelope
                        self.ready_at = time.monotonic() - t0
                        self.ready.set()
                        return
            except (OSError, ValueError):
                pass  # not up yet: refused, reset, 503 (urllib's HTTPError is an OSError)
            self.stop.wait(1.0)

    def wait(self, timeout):
        if not self.ready.wait(timeout):
            raise BootTestFailed("the service did not answer ready on %s within %d s" % (self.url, timeout))
        return self.ready_at

    def stop_polling(self):
        self.stop.set()
        if self.thread is not None:
            self.thread.join(15)


def post_image(port, mid, image, timeout=REQUEST_S):
    """The EdgeBoard envelope's data of POST /api/model/service/base64?mid=mid with image (BGR)."""
    ok, png = cv2.imencode(".png", image)
    body = json.dumps({"image": base64.b64encode(png.tobytes()).decode()}).encode()
    req = urllib.request.Request("http://127.0.0.1:%d/api/model/service/base64?mid=%d" % (port, mid),
                                 data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        doc = json.load(r)
    if doc.get("code") != 0:
        raise BootTestFailed("mid %d answered %r" % (mid, doc))
    return doc["data"]["result"]


def check_inference(port, model_dir):
    """Real answers from the board: the text-direction model's own sample (a line upside down) and
    the same line turned back, and the face detector on NASA's astronaut photo (one face)."""
    line = cv2.imread(str(Path(model_dir) / "text-direction" / "sample.png"))
    astronaut = build_models.check_photos(build_models.load_sources(REPO / "models"),
                                          REPO / "build" / "cache", print)[0]
    checks = [("text-direction sample", 2, line, lambda r: [x["label"] for x in r] == ["180"]),
              ("text-direction sample turned 180", 2, cv2.rotate(line, cv2.ROTATE_180),
               lambda r: [x["label"] for x in r] == ["0"]),
              ("face on astronaut.png", 4, cv2.imread(str(astronaut)), lambda r: len(r) == 1)]
    lines = []
    for what, mid, image, good in checks:
        t = time.monotonic()
        result = post_image(port, mid, image)
        took = time.monotonic() - t
        summary = [(x.get("label"), round(x.get("score", 0), 3)) for x in result]
        if not good(result):
            raise BootTestFailed("mid %d on the %s: unexpected answer %r" % (mid, what, result))
        lines.append("mid %d, %s: %s in %.1f s" % (mid, what, summary, took))
        print("  " + lines[-1], flush=True)
    return lines


def login(console, since):
    console.wait_for(LOGIN_PROMPT, BOOT_S, since)
    mark = console.mark()
    console.type("root\n")
    console.wait_for(PASSWORD_PROMPT, COMMAND_S, mark)
    mark = console.mark()
    console.type(PASSWORD + "\n")
    console.wait_for(SHELL_PROMPT, COMMAND_S, mark)  # typing before it is lost: login flushes the input
    rc, _ = console.run("true", COMMAND_S)
    if rc != 0:
        raise BootTestFailed("the shell after login does not run commands")


def diag_healthy(console):
    """edgeapp-diag typed at the shell: its output, which must end in HEALTHY."""
    rc, out = console.run("edgeapp-diag", COMMAND_S)
    if rc != 0 or "\nHEALTHY: " not in "\n" + out:
        raise BootTestFailed("edgeapp-diag exited %d without HEALTHY:\n%s" % (rc, out))
    return out


def boot(console, health, t0, since, label, times):
    """One boot from t0 (QEMU's start or the kernel's restart): login prompt, ready, diag."""
    health.start(t0)
    console.wait_for(LOGIN_PROMPT, BOOT_S, since)
    times[label + "_login_s"] = round(time.monotonic() - t0, 1)
    print("%s: login prompt after %.1f s" % (label, times[label + "_login_s"]), flush=True)
    login(console, since)
    times[label + "_ready_s"] = round(health.wait(max(1, READY_S - (time.monotonic() - t0))), 1)
    print("%s: service ready after %.1f s" % (label, times[label + "_ready_s"]), flush=True)
    t = time.monotonic()
    out = diag_healthy(console)
    times[label + "_diag_s"] = round(time.monotonic() - t, 1)
    print("%s: edgeapp-diag says %s (%.1f s)" % (label, out.strip().split("\n")[-1], times[label + "_diag_s"]),
          flush=True)
    return out


def reboot(console, stopped):
    """`reboot` typed: the time from it to the kernel's new start, and the console mark there;
    the console on the way down must show stopped (a regex)."""
    since = console.mark()
    t = time.monotonic()
    console.type("reboot\n")
    m = console.wait_for(KERNEL_START, SHUTDOWN_S, since)
    if not stopped.search(console.between(since, m.start())):
        raise BootTestFailed("the init system did not stop the service on the way down (no %r)" % stopped.pattern)
    return time.monotonic(), round(time.monotonic() - t, 1), m.start()


def poweroff(console, proc):
    t = time.monotonic()
    console.type("poweroff\n")
    try:
        proc.wait(SHUTDOWN_S)
    except subprocess.TimeoutExpired:
        raise BootTestFailed("QEMU still runs %d s after poweroff" % SHUTDOWN_S)
    return time.monotonic() - t


def scenario(console, proc, port, model_dir, times, init):
    t0 = time.monotonic()
    health = Health(port)
    try:
        boot(console, health, t0, 0, "boot1", times)
        times["inference"] = check_inference(port, model_dir)
        t1, times["reboot_to_kernel_s"], since = reboot(console, STOPPED[init])
        print("reboot: the kernel starts again %.1f s after `reboot`" % times["reboot_to_kernel_s"], flush=True)
        boot(console, health, t1, since, "boot2", times)
        times["poweroff_s"] = round(poweroff(console, proc), 1)
        print("poweroff: QEMU exited %.1f s after `poweroff`" % times["poweroff_s"], flush=True)
    finally:
        health.stop_polling()
    times["total_s"] = round(time.monotonic() - t0, 1)


def run(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    cmd = qemu_command(args.kernel, args.image, port)
    print("booting %s (service port forwarded to 127.0.0.1:%d)\n  %s" % (args.image, port, " ".join(cmd)), flush=True)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    console = Console(proc, out / ("console-%s.log" % args.init))
    times = {"init": args.init, "load_average": list(load_average())}
    try:
        scenario(console, proc, port, args.model_dir, times, args.init)
    except (BootTestFailed, ConsoleTimeout, OSError) as e:
        print("FAILED: %s\n---- console tail ----\n%s" % (e, console.tail()), file=sys.stderr)
        return 1
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        console.close()
        times["load_average_end"] = list(load_average())
        (out / ("times-%s.json" % args.init)).write_text(json.dumps(times, indent=1) + "\n")
    print("PASSED (%s): %s" % (args.init, json.dumps({k: v for k, v in times.items() if k != "inference"})))
    return 0


def load_average():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kernel", required=True, help="folder with vmlinuz and initrd.img (tools/arm/kernel.sh)")
    p.add_argument("--image", required=True, help="the ext4 root image (tools/arm/bootimage.sh)")
    p.add_argument("--model-dir", required=True, help="the installed bundles (for the text-direction sample)")
    p.add_argument("--init", default="sysv", choices=sorted(STOPPED), help="the image's init system")
    p.add_argument("--out", default="build/arm/boot", help="where the console transcript and times go")
    p.add_argument("--port", type=int, default=0, help="host port for the service (default: a free one)")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
