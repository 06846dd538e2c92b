"""Helpers for tests that start edgeapp in a child process: a free port, its environment, a server.
They are the launcher the tools share (tools/launch.py): the tests start the service as the
benchmark and the soak do."""
from tools.launch import MODEL_DIR, REPO, START_TIMEOUT, Server, free_port, server_env  # noqa: F401
