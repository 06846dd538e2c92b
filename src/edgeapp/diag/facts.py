"""Every fact the summary shows, gathered within a deadline, and the service's state made of them.

The pidfiles and /proc, the listening sockets and the log explain a service that is down or hung;
the service itself is asked only when something listens on its port. Nothing here imports numpy
or Paddle Lite, so edgeapp-diag starts fast on a board.
"""
import importlib.util
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

from edgeapp import config, netinfo, pidfile, sysinfo
from edgeapp.diag.client import HEALTH_TIMEOUT, Answer, ServiceClient
from edgeapp.diag.logs import read_log

RUNTIME_MODULES = ("numpy", "cv2", "paddlelite", "onnxruntime")


@dataclass
class ProcessFacts:
    """What the pidfiles and /proc say about the service and its supervisor."""

    pid: Optional[int] = None
    alive: bool = False
    state: Optional[str] = None        # the /proc state letter (T: stopped) while alive
    uptime_s: Optional[float] = None
    supervisor: Optional[int] = None
    supervisor_alive: bool = False

    @classmethod
    def read(cls, files):
        pid, supervisor = pidfile.read(files["pidfile"]), pidfile.read(files["supervisor"])
        alive = pidfile.alive(pid)
        return cls(pid, alive, pidfile.state(pid) if alive else None, pidfile.uptime_s(pid) if alive else None,
                   supervisor, pidfile.alive(supervisor))


@dataclass
class ServiceAnswers:
    """What the service said; None for what it was not asked (nothing listened, health failed)."""

    health: Optional[Answer] = None
    status: Optional[Answer] = None   # /api/status
    models: Optional[Answer] = None   # /api/models

    def status_data(self):
        """/api/status's data (a dict) when it answered 200, else None."""
        return _data_of(self.status, dict)

    def model_list(self):
        """/api/models's data (a list of models) when it answered 200, else None."""
        return _data_of(self.models, list)

    def wants_token(self):
        return self.models is not None and self.models.status == 401

    def face_db(self):
        """The face database as /api/status reports it (FaceDbFacts), or None when it does not
        (no answer, or a service without a face gallery)."""
        return FaceDbFacts.from_status((self.status_data() or {}).get("faces"))


@dataclass
class FaceDbFacts:
    """/api/status's `faces` (edgeapp.facedb.FaceGallery.status()): what a person needs of it."""

    path: str
    error: Optional[str] = None        # why the file cannot be opened (then nothing below is known)
    model: Optional[str] = None        # the face model's key in use; None: no face model serves
    people: Optional[int] = None       # people with a face of that model
    faces: Optional[int] = None        # their faces (vectors)
    memory_bytes: Optional[int] = None  # the vectors in memory
    max_people: Optional[int] = None
    # Stored for other models only, kept but never matched: after a model change, the people
    # to register again (a few of their names), and the faces of other models.
    to_register: int = 0
    to_register_names: List[str] = field(default_factory=list)
    other_faces: int = 0

    @classmethod
    def from_status(cls, st):
        if not isinstance(st, dict):
            return None
        other = st.get("other_models") if isinstance(st.get("other_models"), dict) else {}
        names = other.get("users") if isinstance(other.get("users"), list) else []
        return cls(str(st.get("path") or "?"), st.get("error"), st.get("model"), st.get("users"),
                   st.get("faces"), st.get("memory_bytes"), st.get("max_users"),
                   other.get("users_total") or len(names), [str(n) for n in names], other.get("faces") or 0)


def _data_of(answer, kind):
    if answer is None or answer.status != 200 or not isinstance(answer.data, kind):
        return None
    return answer.data


@dataclass
class BoardFacts:
    """Readings of the board itself (each empty or None when the board does not expose it)."""

    interfaces: List[Tuple[str, str]] = field(default_factory=list)      # (name, IPv4 address)
    temperatures: List[Tuple[str, float]] = field(default_factory=list)  # (sensor, degrees C)
    memory_mb: Tuple[Optional[float], Optional[float]] = (None, None)    # (total, available)
    disks: List[Tuple[str, float, float]] = field(default_factory=list)  # (path, % used, MB free)
    python: str = ""
    modules: List[Tuple[str, bool]] = field(default_factory=list)        # (runtime module, found)

    @classmethod
    def read(cls, folders):
        disks = [d for d in (sysinfo.disk(p) for p in folders) if d]
        return cls(netinfo.ipv4_interfaces(), sysinfo.temperatures(), sysinfo.memory_mb(), disks,
                   "Python %s" % platform.python_version(), [(m, _installed(m)) for m in RUNTIME_MODULES])


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None  # looks on disk, imports nothing
    except (ImportError, ValueError):
        return False


@dataclass
class Facts:
    settings: Any                     # config.Settings in force (the defaults when config_error)
    config_error: Optional[str]
    files: Dict[str, str]             # config.service_files: pidfile, supervisor, log
    process: ProcessFacts
    listening: bool                   # something listens on the service's port
    answers: ServiceAnswers
    state: str                        # READY, STARTING, NOT-READY, HUNG or DOWN
    why: str                          # what explains a state other than READY
    installed: Union[Dict[int, str], str, None]  # {mid: name} in the model folder, or why not;
                                                 # read only when the service did not list its models
    log_lines: Optional[List[str]]
    board: BoardFacts

    def failed_models(self):
        """The models the service reports as not ready."""
        return [m for m in self.answers.model_list() or [] if not m.get("ready")]


def gather(settings, config_error, deadline):
    """The Facts; nothing here waits past deadline (time.monotonic())."""
    files = config.service_files(settings)
    process = ProcessFacts.read(files)
    listening = netinfo.listening(settings.port)
    answers = ask_service(ServiceClient.for_settings(settings), listening, deadline)
    state, why = service_state(process, listening, answers.health, settings.port, files["pidfile"])
    installed = installed_models(settings.model_dir) if answers.model_list() is None else None
    log_lines = read_log(files["log"], settings.root, time_left(deadline, 0.8))
    board = BoardFacts.read((settings.model_dir, os.path.dirname(files["pidfile"])))
    return Facts(settings, config_error, files, process, listening, answers, state, why, installed,
                 log_lines, board)


def ask_service(client, listening, deadline):
    """Health first; status and models only from a service that answers it."""
    if not listening:
        return ServiceAnswers()
    health = client.health(min(HEALTH_TIMEOUT, time_left(deadline)))
    if health.status is None or health.timed_out:
        return ServiceAnswers(health)
    # Both answer from memory (no accelerator round trip), so they are quick when health is.
    return ServiceAnswers(health, client.get("/api/status", time_left(deadline, 0.5)),
                          client.get("/api/models", time_left(deadline, 0.5)))


def time_left(deadline, cap=None):
    """Seconds until deadline (at least 0.05, so a late request still gets its chance), at most cap."""
    left = max(0.05, deadline - time.monotonic())
    return min(left, cap) if cap else left


def installed_models(model_dir):
    """{mid: name} of the bundles in model_dir, or why they cannot be read."""
    # Here, not at the top: only a service that did not list its models needs the bundle reader.
    from edgeapp.bundle import BundleError, load_bundles

    try:
        return {mid: b.name for mid, b in load_bundles(model_dir).items()}
    except BundleError as e:
        return str(e)


def service_state(process, listening, health, port, pidfile_path):
    """(state word, why): READY, STARTING, NOT-READY, HUNG or DOWN."""
    if health is not None and health.status is not None:
        return _answered_state(health)
    if health is not None and health.timed_out:
        how = " (process state T: stopped)" if process.state == "T" else ""
        return "HUNG", ("port %d accepts connections but /api/health gave no answer in %.1f s%s"
                        % (port, HEALTH_TIMEOUT, how))
    if process.alive:
        if health is not None:
            return "HUNG", "pid %d runs but /api/health failed: %s" % (process.pid, health.error)
        return "STARTING", "pid %d runs but does not listen on port %d yet" % (process.pid, port)
    if listening:
        return "DOWN", "something else listens on port %d: %s" % (port, health.error if health else "")
    return "DOWN", _why_down(process, pidfile_path)


def _answered_state(health):
    if health.status == 200:
        return "READY", ""
    if "starting" in health.msg:
        return "STARTING", "loading and warming up the models"
    return "NOT-READY", health.msg or "HTTP %d from /api/health" % health.status


def _why_down(process, pidfile_path):
    if process.pid:
        why = "the pidfile names pid %d, which is not running: the service died" % process.pid
    else:
        why = "not running (no pidfile %s)" % pidfile_path
    if process.supervisor_alive:
        why += "; the supervisor (pid %d) restarts it, see the log" % process.supervisor
    elif process.supervisor:
        why += "; its supervisor (pid %d) is gone too" % process.supervisor
    return why
