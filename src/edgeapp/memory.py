"""Process memory readings (Linux /proc), for warm-up figures and tests."""


def rss_bytes(pid=None):
    """Resident set size of a process in bytes, 0 where /proc is unavailable."""
    path = "/proc/%s/status" % (pid or "self")
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def mb(n):
    return round(n / (1024.0 * 1024.0), 1)


def tame_malloc(mmap_threshold=256 * 1024):
    """Keep glibc from holding on to freed image buffers (Linux/glibc only; a no-op elsewhere).

    Each request allocates and frees multi-MB arrays (decoded images, tensors) in one of many
    threads. By default glibc raises its mmap threshold to the largest freed block and gives each
    thread its own arena, so those buffers end up in heaps that never shrink: the HTTP process grew
    from 58 to 105 MB over a dozen 4000x3000 uploads. A fixed threshold sends every large buffer
    to mmap (returned to the system on free), and few arenas bound what small allocations keep.

    mmap_threshold=None keeps glibc's own (adaptive) threshold: the accelerator worker does so,
    because Paddle Lite allocates and frees its buffers on every run, and with a fixed threshold each
    of them became a fresh mmap (page faults, zeroing): mid 2 ran 1.7x slower (measured, 1.6 -> 2.9 ms).
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_ARENA_MAX, M_MMAP_THRESHOLD = -8, -3
        if mmap_threshold:
            libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))
        libc.mallopt(M_ARENA_MAX, 2)
        return True
    except (OSError, AttributeError):
        return False
