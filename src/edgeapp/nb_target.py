"""Which hardware a Paddle Lite .nb file was built for, and whether this board can run it.

paddle_lite_opt picks one kernel per operator for its --valid_targets and records each choice in
the .nb as a flatbuffer string "op/alias/target/precision/layout" (e.g. "conv2d/def/2/1/1"),
stored as a little-endian 32-bit length then the text and a NUL. The target number is Paddle
Lite's TargetType (lite/api/paddle_place.h). Every operator of an x86 build runs on kX86 or kHost;
of an arm build, on kARM or kHost. So the file's targets are read without loading it, and a model
built for the other architecture is refused with a message instead of a crash of the probe.
"""
import platform
import re

# Paddle Lite's TargetType numbers (paddle_place.h), by the names tools/build_models.py uses.
TARGETS = {0: "unknown", 1: "host", 2: "x86", 3: "cuda", 4: "arm", 5: "opencl", 6: "any", 7: "fpga", 8: "npu",
           9: "xpu", 10: "bm", 11: "mlu", 12: "rknpu", 13: "apu", 14: "huawei_ascend_npu",
           15: "imagination_nna", 16: "intel_fpga", 17: "metal", 18: "nnadapter"}
ANYWHERE = {"host", "any"}  # kernels that run on every target
_KERNEL = re.compile(rb"([A-Za-z0-9_]{1,64})/([A-Za-z0-9_]{1,32})/([0-9]{1,2})/[0-9]{1,2}/[0-9]{1,2}\x00")
CHUNK = 4 * 1024 * 1024
OVERLAP = 128  # longer than any kernel string with its length prefix


def kernel_targets(path):
    """The set of target names the .nb file's kernels run on (host and any left out); empty when
    no kernel string is found (then only loading it can tell)."""
    found = set()
    with open(path, "rb") as f:
        tail = b""
        for block in iter(lambda: f.read(CHUNK), b""):
            data = tail + block
            for m in _KERNEL.finditer(data):
                if _length_prefixed(data, m):
                    found.add(TARGETS.get(int(m.group(3)), "target %s" % m.group(3).decode()))
            tail = data[-OVERLAP:]
    return found - ANYWHERE


def _length_prefixed(data, m):
    """True when a flatbuffer string length (of exactly this text) comes before the match: a kernel
    name, not bytes of the weights that look like one."""
    start = m.start()
    return start >= 4 and int.from_bytes(data[start - 4:start], "little") == m.end() - 1 - start


def board_targets(machine=None):
    """The targets whose kernels this machine's Paddle Lite can run: x86 on a PC, arm (and the
    accelerators of ARM boards: FPGA, OpenCL, NNAdapter) on an ARM board."""
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64", "i386", "i686", "x86"):
        return {"x86"}
    if machine.startswith(("aarch64", "arm")):
        return {"arm", "fpga", "opencl", "nnadapter", "intel_fpga"}
    return set()


def board_name(machine=None):
    """The target name tools/build_models.py --target takes for this machine (else the machine's)."""
    here = board_targets(machine)
    if "x86" in here:
        return "x86"
    if here:
        return "arm"
    return machine or platform.machine()


def mismatch(path, declared=None, machine=None):
    """None if the .nb at path (bundle.json's "target": declared) can run here, else why not."""
    here = board_targets(machine)
    board = board_name(machine)
    if declared and declared not in here:
        return ("bundle.json says its model.nb is for %s; this board (%s) runs %s builds: build it with "
                "tools/build_models.py --target %s (or tools/bundle.py --target %s)" % (declared, board, board,
                                                                                      board, board))
    other = kernel_targets(path) - here
    if other:
        return ("its model.nb has kernels for %s, which this board (%s) cannot run: build it with --target %s"
                % (", ".join(sorted(other)), board, board))
    return None
