"""What the report says about the run itself: the machine, the git commit, edgeapp's version."""
import json
import os
import platform
import subprocess

from tools.launch import REPO


def machine():
    ram_kb = _first_field("/proc/meminfo", "MemTotal").split()[0]
    return {
        "cpu": _first_field("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "ram_gb": round(int(ram_kb) / 1048576.0, 1) if ram_kb.isdigit() else "?",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "paddlelite": _version("paddlelite"), "onnxruntime": _version("onnxruntime"), "numpy": _version("numpy"),
        "opencv": _version("opencv-python-headless"), "cheroot": _version("cheroot"), "bottle": _version("bottle"),
        "loadavg": loadavg(),
    }


def _first_field(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _version(dist):
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:
        return "?"


def engine_version(engine):
    """The installed version of an engine's package (paddlelite, onnxruntime)."""
    return _version(engine)


def peer_versions(lib):
    """{package: version} of FastAPI and uvicorn in the peer's folder (tools/peer/requirements.txt)."""
    try:
        from importlib.metadata import distributions
        found = {d.metadata["Name"].lower(): d.version for d in distributions(path=[lib])}
    except Exception:
        found = {}
    return {name: found.get(name, "?") for name in ("fastapi", "uvicorn", "starlette", "uvloop", "httptools")}


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "?"


def git_describe():
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(REPO), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=str(REPO),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               universal_newlines=True).stdout.strip()
        return sha + ("+uncommitted changes" if dirty else "") if sha else "?"
    except OSError:
        return "?"


def edgeapp_version():
    try:
        from edgeapp import __version__
        return __version__
    except Exception:
        return "?"


def display(path):
    """path relative to the current directory when it is below it."""
    rel = os.path.relpath(path, os.getcwd())
    return path if rel.startswith("..") else rel


def kept_header(folder, make=None):
    """The header lines of a measurement kept beside its results in folder/header.json: written
    from make() when given (a new measurement), read back as they are otherwise (a report made
    again from the same results keeps the measurement's own date, commit and machine)."""
    path = os.path.join(folder, "header.json")
    if make is not None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(make(), f, ensure_ascii=False)
    with open(path, encoding="utf-8") as f:
        return json.load(f)
