"""The board's IPv4 addresses and listening ports, read from the kernel (no packet is sent).

Used for the ready banner and by edgeapp-diag: a person on the serial console needs the URL to
type into a browser on the LAN.
"""
import array
import fcntl
import socket
import struct

SIOCGIFCONF = 0x8912
SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
IFF_LOOPBACK = 0x8
_IFREQ = 40 if struct.calcsize("P") == 8 else 32  # sizeof(struct ifreq): name[16] + a union
_WILDCARD = ("", "0.0.0.0", "::")


def ipv4_interfaces():
    """[(interface, address)] of every interface that is up, loopback excluded, in kernel order."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        buf = array.array("B", b"\0" * (_IFREQ * 64))
        addr, _ = buf.buffer_info()
        n = struct.unpack("iL", fcntl.ioctl(s.fileno(), SIOCGIFCONF, struct.pack("iL", len(buf), addr)))[0]
        raw = buf.tobytes()[:n]
        out = []
        for off in range(0, n, _IFREQ):
            name = raw[off:off + 16].split(b"\0", 1)[0].decode("ascii", "replace")
            ip = socket.inet_ntoa(raw[off + 20:off + 24])  # sockaddr_in: family, port, then the address
            if _flags(s, name) & (IFF_UP | IFF_LOOPBACK) == IFF_UP:
                out.append((name, ip))
        return out
    except OSError:
        return []
    finally:
        s.close()


def _flags(s, name):
    try:
        req = struct.pack("16sH", name.encode("ascii", "replace"), 0) + b"\0" * (_IFREQ - 18)
        return struct.unpack("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req)[:18])[1]
    except OSError:
        return 0


def url(host, port):
    if ":" in host:
        host = "[%s]" % host
    return "http://%s:%d/" % (host, port)


def service_urls(host, port):
    """The URLs a client on the LAN can use: every non-loopback IPv4 address for a wildcard
    listener (loopback only when there is none yet), else the address listened on."""
    if host not in _WILDCARD:
        return [url(host, port)]
    urls = [url(ip, port) for _, ip in ipv4_interfaces()]
    return urls or [url("127.0.0.1", port)]


def listening(port):
    """True if some socket on this machine is listening on TCP port (from /proc/net/tcp, tcp6)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    cols = line.split()
                    # local_address is ADDR:PORT in hex; state 0A is LISTEN
                    if len(cols) > 3 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except (OSError, ValueError):
            continue
    return False
