"""Service settings: defaults < config file < EDGEAPP_* environment < command-line flags.

The config file is /etc/default style: KEY=value lines, `#` comments, optional quotes, keys
named like the environment variables (EDGEAPP_PORT=9876; the EDGEAPP_ prefix may be left out).
The same file can therefore serve as a systemd EnvironmentFile.
A bad value is refused with a message that names the key and where the value came from.
"""
import os
import re

PREFIX = "EDGEAPP_"
CONFIG_ENV = "EDGEAPP_CONFIG"  # path of the config file when --config is not given
# A staging root (tests, image builds): absolute path settings are read below it, like the init script does.
ROOT_ENV = "EDGEAPP_ROOT"
# Where an installed service keeps its pidfiles and log when the config names none (tmpfs on the images).
RUN_DIR = "/run/edgeapp"


class ConfigError(Exception):
    pass


def _integer(text, low=None, high=None):
    text = text.strip()
    if not re.match(r"^[+-]?[0-9][0-9_]*$", text):
        raise ValueError("not a whole number")
    n = int(text)
    _check_range(n, low, high)
    return n


def _number(text, low=None, high=None):
    try:
        x = float(text.strip())
    except ValueError:
        raise ValueError("not a number")
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    _check_range(x, low, high)
    return x


def _check_range(x, low, high):
    if low is not None and x < low:
        raise ValueError("must be at least %s" % low)
    if high is not None and x > high:
        raise ValueError("must be at most %s" % high)


_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def _bytes(text, low=None, high=None):
    """A byte count: 20971520, 20M, 20MB or 20MiB (K, M, G are powers of 1024)."""
    m = re.match(r"^\s*([0-9][0-9_]*)\s*([kKmMgG]?)(i?[bB])?\s*$", text)
    if not m:
        raise ValueError("not a byte count (examples: 20971520, 512K, 20M)")
    n = int(m.group(1)) * _UNITS[m.group(2).lower()]
    _check_range(n, low, high)
    return n


def _cpu_list(text):
    """CPUs as Linux writes them: 1, 2-3, 0,2 (normalized; empty: none)."""
    return format_cpus(cpu_set(text))


def cpu_set(text):
    """{cpu numbers} of a CPU list such as "1", "2-3" or "0,2"; empty text: an empty set."""
    cpus = set()
    for part in (text or "").replace(" ", "").split(","):
        if not part:
            continue
        m = re.match(r"^([0-9]{1,4})(?:-([0-9]{1,4}))?$", part)
        if not m or int(m.group(2) or m.group(1)) < int(m.group(1)):
            raise ValueError("not a CPU list (examples: 1, 2-3, 0,2)")
        cpus.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    return cpus


def format_cpus(cpus):
    return ",".join(str(c) for c in sorted(cpus)) or None


def _choice(*allowed):
    def parse(text):
        t = text.strip().lower()
        if t not in allowed:
            raise ValueError("must be one of: %s" % ", ".join(allowed))
        return t
    return parse


def _text(text):
    return text.strip()


def _abs_path(text):
    t = text.strip()
    if not t.startswith("/"):
        raise ValueError("must be an absolute path")
    return t


def _log_target(text):
    t = text.strip()
    if t not in ("syslog", "journal") and not t.startswith("/"):
        raise ValueError("must be 'syslog', 'journal' or an absolute file path")
    return t


def _checkout():
    """The source checkout this package runs from (an editable install of src/edgeapp), or None."""
    package = os.path.dirname(os.path.abspath(__file__))
    checkout = os.path.dirname(os.path.dirname(package))
    return checkout if os.path.isfile(os.path.join(checkout, "pyproject.toml")) else None


def default_model_dir():
    """Where the built bundles are when no setting names a folder: the board's own folder.

    From a source checkout (an editable install of src/edgeapp), the checkout's build/models/x86,
    which `make setup` builds; from an installed board tree (PREFIX/lib/python/edgeapp),
    PREFIX/models; else build/models/x86 below the current folder."""
    package = os.path.dirname(os.path.abspath(__file__))
    checkout = _checkout()
    if checkout:
        return os.path.join(checkout, "build", "models", "x86")
    board = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(package))), "models")
    if os.path.isdir(board):
        return board
    return os.path.join("build", "models", "x86")


BOARD_FACE_DB = "/var/lib/edgeapp/faces.db"


def default_face_db():
    """Where the face database is when no setting names one: from a source checkout, its build/
    folder (beside the built models: nothing of the host's is touched); on a board, the state
    folder /var/lib/edgeapp (persistent storage, unlike /run)."""
    checkout = _checkout()
    return os.path.join(checkout, "build", "faces.db") if checkout else BOARD_FACE_DB


# name: (parser, default, what it is). The environment variable is EDGEAPP_<NAME>.
FIELDS = {
    "host": (_text, "0.0.0.0", "address to listen on"),
    "port": (lambda s: _integer(s, 0, 65535), 9876, "TCP port (the EdgeBoard document uses 9876)"),
    "threads": (lambda s: _integer(s, 1, 256), 8, "HTTP threads for requests with a body"),
    "queue_depth": (lambda s: _integer(s, 1, 256), 4, "inference jobs in flight at most; more get 503"),
    "queue_wait_ms": (lambda s: _integer(s, 0, 600000), 5000,
                      "ms a request that finds the queue full may wait in line for room, when the measured "
                      "times of the jobs ahead predict no longer (never past its deadline); else 503 at once "
                      "with Retry-After the predicted wait. 0: never wait"),
    "request_timeout": (lambda s: _number(s, 0.1, 3600), 30.0, "seconds a request may wait for inference"),
    "max_body_bytes": (lambda s: _bytes(s, 1024, 1024 ** 3), 20 * 1024 ** 2, "largest request body, bytes"),
    "max_bundle_bytes": (lambda s: _bytes(s, 1024 * 1024, 16 * 1024 ** 3), 256 * 1024 ** 2,
                         "largest model bundle pushed to POST /api/models, bytes, packed and unpacked (streamed "
                         "to the model folder's disk, never held in memory)"),
    "slot_bytes": (lambda s: _bytes(s, 0, 1024 ** 3), 0,
                   "room each accelerator slot keeps at least for a model's input tensor and for its outputs, "
                   "bytes (0: sized at start for the largest model installed); set it on a board that will be "
                   "pushed models larger than those it starts with (memory: queue_depth x twice this)"),
    "max_pixels": (lambda s: _integer(s, 1), 40 * 1000 * 1000, "largest image, width x height"),
    "reduced_decode": (_choice("on", "off"), "on",
                       "decode a JPEG at 1/2, 1/4 or 1/8 size when the model's input is that much smaller "
                       "(results stay in full-image pixels; a rendered image is always full size)"),
    "max_mids": (lambda s: _integer(s, 1, 64), 8, "model ids per multipart request at most"),
    "model_dir": (_text, default_model_dir(), "folder of the built model bundles"),
    "token": (_text, None, "access token; if set, every endpoint but /api/health needs it"),
    "cors_origins": (_text, None, "origins (comma-separated, or *) whose web pages may call the API; none: CORS off"),
    "memory_budget_mb": (lambda s: _integer(s, 0), 0, "memory for all edgeapp processes, MB (0: no check)"),
    "memory_policy": (_choice("refuse", "drop"), "refuse",
                      "over the budget: refuse to start, or drop the models that do not fit"),
    "engine": (_choice("paddlelite", "onnxruntime"), "paddlelite",
               "inference engine for the bundles that do not name theirs: paddlelite (model.nb) or "
               "onnxruntime (model.onnx); a board profile sets its own"),
    "lite_threads": (lambda s: _integer(s, 0, 64), 0, "Paddle Lite threads per model (0: its default; x86: OMP_NUM_THREADS of the worker)"),
    "ort_threads": (lambda s: _integer(s, 0, 64), 0,
                    "ONNX Runtime intra-op threads per model (0: the worker's own CPUs if worker_cpus is set, "
                    "else every CPU but one, which the HTTP process keeps)"),
    "deepstack_detection": (_text, "objects", "model name that DeepStack's /v1/vision/detection runs"),
    "face_db": (_abs_path, default_face_db(),
                "the face database (SQLite; written at each face register and delete, nowhere else)"),
    "face_max_users": (lambda s: _integer(s, 1, 100000), 100, "people the face database holds at most"),
    "face_max_per_user": (lambda s: _integer(s, 1, 1000), 10, "faces (pictures) one person may have at most"),
    "face_threshold": (lambda s: _number(s, 0, 1), None,
                       "cosine similarity (0-1) from which a face is recognised as a registered person (none: "
                       "the face model's own, measured; a DeepStack client's min_confidence may raise it, not "
                       "lower it)"),
    "callback_url": (_text, None, "URL every inference result is also POSTed to as JSON (none: off)"),
    "callback_token": (_text, None, "sent as 'Authorization: Bearer ...' with each callback"),
    "hang_timeout": (lambda s: _number(s, 0, 3600), 0.0,
                     "seconds the worker may hold jobs without answering before it is killed (0: request_timeout)"),
    "worker_cpus": (_cpu_list, None,
                    "CPUs reserved for the accelerator worker, e.g. 1 or 2-3; the HTTP process then runs on the "
                    "others (none: the kernel places both)"),
    "worker_spin_ms": (lambda s: _integer(s, 0, 100), 5,
                       "ms the worker keeps polling for its next job after each one before it sleeps, only on "
                       "CPUs of its own (worker_cpus): a CPU that went idle runs the next inference slower"),
    "lite_power_mode": (_choice("default", "high", "low", "full", "no_bind", "rand_high", "rand_low"), "default",
                        "Paddle Lite power mode on ARM: which cores its kernels use (default: its own)"),
    "board": (_text, None, "board profile name, shown in the ready banner and by edgeapp-diag"),
    "pidfile": (_abs_path, None, "file the service writes its pid to while it runs"),
    "console": (_abs_path, None, "device the ready banner is also written to, e.g. /dev/console"),
    "log": (_log_target, None, "where the service's output goes: syslog, journal (systemd) or a file"),
    "log_max_bytes": (lambda s: _bytes(s, 4096, 64 * 1024 ** 2), 256 * 1024,
                      "log file size at which it is rotated (one older file is kept)"),
}

# Settings that name files on the target: read below EDGEAPP_ROOT when that is set.
PATH_FIELDS = ("model_dir", "pidfile", "console", "log", "face_db")


class Settings:
    """Plain attributes (settings.port, ...) plus .sources: where each value came from."""

    def __init__(self):
        self.sources = {}
        self.root = ""
        for name, (_, default, _) in FIELDS.items():
            setattr(self, name, default)
            self.sources[name] = "default"

    def set(self, name, raw, source, label):
        """Parse raw (a string) for setting name; label is how the user wrote the key."""
        parse = FIELDS[name][0]
        try:
            value = parse(raw)
        except ValueError as e:
            raise ConfigError("%s=%r %s: %s" % (label, raw, source, e))
        setattr(self, name, value)
        self.sources[name] = source

    def describe(self):
        """One line for the log; the token is never shown."""
        parts = []
        for name in FIELDS:
            value = getattr(self, name)
            if name in SECRETS:
                value = "set" if value else "none"
            parts.append("%s=%s" % (name, value))
        return " ".join(parts)


SECRETS = ("token", "callback_token")  # never logged, never handed to the init script


def env_name(name):
    return PREFIX + name.upper()


def _key_to_name(key):
    k = key.strip().upper()
    if k.startswith(PREFIX):
        k = k[len(PREFIX):]
    name = k.lower()
    return name if name in FIELDS else None


def read_config_file(path):
    """[(name, raw value, key as written, line number)] from a KEY=value file."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ConfigError("config file %s: cannot read it: %s" % (path, e.strerror or e))
    except UnicodeDecodeError:
        raise ConfigError("config file %s: not UTF-8 text" % path)
    out = []
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("export "):  # shell-sourced /etc/default files often say `export KEY=value`
            s = s[len("export "):].lstrip()
        if "=" not in s:
            raise ConfigError("config file %s line %d: expected KEY=value, got %r" % (path, n, line))
        key, value = s.split("=", 1)
        key = key.strip()
        name = _key_to_name(key)
        if name is None:
            raise ConfigError("config file %s line %d: unknown setting %r; known: %s"
                              % (path, n, key, ", ".join(env_name(k) for k in FIELDS)))
        out.append((name, _unquote(value, path, n), key, n))
    return out


def _unquote(value, path, n):
    v = value.strip()
    if v[:1] in ("'", '"'):
        q = v[0]
        end = v.find(q, 1)
        if end < 0:
            raise ConfigError("config file %s line %d: unterminated %s quote" % (path, n, q))
        rest = v[end + 1:].strip()
        if rest and not rest.startswith("#"):
            raise ConfigError("config file %s line %d: unexpected text after the quoted value: %r" % (path, n, rest))
        return v[1:end]
    # Shell rule: an unquoted value ends at whitespace followed by `#` (a trailing comment).
    m = re.search(r"\s#", v)
    return v[:m.start()].rstrip() if m else v


def load(config_file=None, environ=None, flags=None):
    """Settings from every source. flags: {name: raw string or None (not given)} from the command line.

    config_file defaults to $EDGEAPP_CONFIG; no file is read when neither is set.
    """
    environ = os.environ if environ is None else environ
    settings = Settings()
    path = config_file or environ.get(CONFIG_ENV) or None
    # An empty value means "not set here" in every source (`EDGEAPP_PORT= make run` is harmless).
    if path:
        for name, raw, key, n in read_config_file(path):
            if raw.strip():
                settings.set(name, raw, "in %s line %d" % (path, n), key)
    for name in FIELDS:
        var = env_name(name)
        if environ.get(var, "").strip():
            settings.set(name, environ[var], "from the environment", var)
    for name, raw in (flags or {}).items():
        if name not in FIELDS:
            raise ConfigError("unknown setting %r" % name)
        if raw is not None and str(raw).strip():
            settings.set(name, str(raw), "on the command line", "--" + name.replace("_", "-"))
    settings.root = (environ.get(ROOT_ENV) or "").rstrip("/")
    if settings.root:
        for name in PATH_FIELDS:
            value = getattr(settings, name)
            # A default is a path on this machine already (model_dir's is found from where the
            # package is), not one on the target.
            if value and value.startswith("/") and settings.sources[name] != "default":
                setattr(settings, name, settings.root + value)
    return settings


def service_files(settings):
    """{pidfile, supervisor, log}: the files the init script and edgeapp-diag agree on.

    Unset settings fall back to RUN_DIR (below the staging root, if any); log may be "syslog".
    """
    run_dir = settings.root + RUN_DIR
    pidfile = settings.pidfile or run_dir + "/edgeapp.pid"
    return {
        "pidfile": pidfile,
        "supervisor": os.path.join(os.path.dirname(pidfile), "supervise.pid"),
        "log": settings.log or os.path.join(os.path.dirname(pidfile), "edgeapp.log"),
    }


def shell_assignments(settings):
    """Settings as `cfg_<name>='value'` lines for `eval` in the init script (the token is left out)."""
    values = {name: getattr(settings, name) for name in FIELDS if name not in SECRETS}
    values.update(service_files(settings))
    values["root"] = settings.root
    lines = []
    for name, value in sorted(values.items()):
        text = "" if value is None else str(value)
        lines.append("cfg_%s='%s'" % (name, text.replace("'", "'\\''")))
    return "\n".join(lines)
