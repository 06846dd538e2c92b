"""Helpers for tests that start edgeapp in a child process."""
import os

import edgeapp

SRC = os.path.dirname(os.path.dirname(os.path.abspath(edgeapp.__file__)))
MODEL_DIR = os.path.abspath(os.environ.get("EDGEAPP_MODEL_DIR", os.path.join("build", "models", "x86")))


def child_env(**extra):
    """The environment for a child python: our src/ on its path, the built models, no token."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["EDGEAPP_MODEL_DIR"] = MODEL_DIR
    env.update({k: str(v) for k, v in extra.items()})
    return env
