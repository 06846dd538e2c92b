"""Board readings for edgeapp-diag: temperature sensors, memory and disk (Linux /proc and /sys)."""
import glob
import os


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def temperatures(sys_root="/sys"):
    """[(sensor name, degrees C)] from thermal zones, hwmon and IIO (the Zynq MPSoC's AMS is IIO)."""
    out = []
    for zone in sorted(glob.glob(sys_root + "/class/thermal/thermal_zone*")):
        milli = _number(_read(zone + "/temp"))
        if milli is not None:
            out.append((_read(zone + "/type") or os.path.basename(zone), milli / 1000.0))
    for hw in sorted(glob.glob(sys_root + "/class/hwmon/hwmon*")):
        for inp in sorted(glob.glob(hw + "/temp*_input")):
            milli = _number(_read(inp))
            if milli is not None:
                label = _read(inp.replace("_input", "_label")) or os.path.basename(inp)[:-6]
                out.append(("%s %s" % (_read(hw + "/name") or os.path.basename(hw), label), milli / 1000.0))
    for dev in sorted(glob.glob(sys_root + "/bus/iio/devices/iio:device*")):
        for raw_path in sorted(glob.glob(dev + "/in_temp*_raw")):
            base = raw_path[:-4]
            raw = _number(_read(raw_path))
            scale = _number(_read(base + "_scale"))
            if raw is None or scale is None:
                continue
            offset = _number(_read(base + "_offset")) or 0.0
            name = os.path.basename(base)[3:]  # in_temp0_ps_temp -> temp0_ps_temp
            out.append(("%s %s" % (_read(dev + "/name") or "iio", name), (raw + offset) * scale / 1000.0))
    return out


def memory_mb():
    """(total, available) system memory in MB from /proc/meminfo, or (None, None)."""
    found = {}
    text = _read("/proc/meminfo") or ""
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable", "MemFree"):
            found[key] = _number(rest.split()[0]) if rest.split() else None
    total = found.get("MemTotal")
    avail = found.get("MemAvailable", found.get("MemFree"))
    return (total / 1024.0 if total else None, avail / 1024.0 if avail is not None else None)


def disk(path):
    """(mount-relevant path, used %, free MB) for the file system holding path, or None."""
    while path and not os.path.exists(path):
        path = os.path.dirname(path.rstrip("/")) or "/"
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    if total == 0:
        return None
    used = 100.0 * (total - st.f_bfree * st.f_frsize) / total
    return path, used, free / 1048576.0
