"""Settings: defaults < config file < EDGEAPP_* environment < command-line flags, and clear errors."""
import pytest

from edgeapp import config
from edgeapp.config import ConfigError, load


def write(tmp_path, text, name="edgeapp.conf"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults():
    s = load(environ={})
    assert (s.host, s.port, s.threads, s.queue_depth) == ("0.0.0.0", 9876, 8, 4)
    assert s.request_timeout == 30.0 and s.max_body_bytes == 20 * 1024 * 1024
    assert s.max_pixels == 40 * 1000 * 1000 and s.max_mids == 8 and s.token is None
    assert set(s.sources.values()) == {"default"}


def test_each_source_overrides_the_one_before(tmp_path):
    path = write(tmp_path, "EDGEAPP_PORT=1111\nEDGEAPP_THREADS=3\nEDGEAPP_QUEUE_DEPTH=2\n")
    env = {"EDGEAPP_PORT": "2222", "EDGEAPP_THREADS": "5"}
    s = load(path, environ=env, flags={"port": "3333", "host": None})
    assert (s.port, s.threads, s.queue_depth, s.host) == (3333, 5, 2, "0.0.0.0")
    assert s.sources["port"] == "on the command line"
    assert s.sources["threads"] == "from the environment"
    assert s.sources["queue_depth"] == "in %s line 3" % path
    assert s.sources["host"] == "default"


def test_config_file_syntax(tmp_path):
    path = write(tmp_path, "\n".join([
        "# edgeapp settings, /etc/default style",
        "",
        "   # indented comment",
        "EDGEAPP_HOST=127.0.0.1",
        'EDGEAPP_MODEL_DIR="/opt/edge app/models"',
        "EDGEAPP_TOKEN='a#b=c'",
        "export EDGEAPP_THREADS=2",
        "port = 8080   # trailing comment",
        "Max_Body_Bytes=512K",
        "EDGEAPP_REQUEST_TIMEOUT=2.5",
        "EDGEAPP_MAX_MIDS=",  # empty: not set here
    ]))
    s = load(path, environ={})
    assert s.host == "127.0.0.1" and s.model_dir == "/opt/edge app/models"
    assert s.token == "a#b=c" and s.threads == 2 and s.port == 8080
    assert s.max_body_bytes == 512 * 1024 and s.request_timeout == 2.5
    assert s.max_mids == 8 and s.sources["max_mids"] == "default"


def test_config_file_from_the_environment(tmp_path):
    path = write(tmp_path, "EDGEAPP_PORT=4444\n")
    assert load(environ={"EDGEAPP_CONFIG": path}).port == 4444
    assert load(write(tmp_path, "EDGEAPP_PORT=5555\n", "other.conf"), environ={"EDGEAPP_CONFIG": path}).port == 5555


@pytest.mark.parametrize("text, value", [("1048576", 1048576), ("64K", 65536), ("20M", 20 * 1024 ** 2),
                                         ("20MB", 20 * 1024 ** 2), ("20MiB", 20 * 1024 ** 2), ("1g", 1024 ** 3)])
def test_byte_sizes(text, value):
    assert load(environ={"EDGEAPP_MAX_BODY_BYTES": text}).max_body_bytes == value


def test_empty_environment_values_are_not_set():
    s = load(environ={"EDGEAPP_PORT": "", "EDGEAPP_TOKEN": "  "})
    assert s.port == 9876 and s.token is None


@pytest.mark.parametrize("var, value, words", [
    ("EDGEAPP_PORT", "abc", "not a whole number"),
    ("EDGEAPP_PORT", "70000", "at most 65535"),
    ("EDGEAPP_THREADS", "0", "at least 1"),
    ("EDGEAPP_QUEUE_DEPTH", "1.5", "not a whole number"),
    ("EDGEAPP_REQUEST_TIMEOUT", "soon", "not a number"),
    ("EDGEAPP_REQUEST_TIMEOUT", "nan", "not a finite number"),
    ("EDGEAPP_MAX_BODY_BYTES", "20 elephants", "not a byte count"),
    ("EDGEAPP_MAX_PIXELS", "-1", "at least 1"),
])
def test_bad_environment_value_names_key_and_source(var, value, words):
    with pytest.raises(ConfigError) as e:
        load(environ={var: value})
    msg = str(e.value)
    assert var in msg and repr(value) in msg and "from the environment" in msg and words in msg


def test_bad_file_value_names_key_file_and_line(tmp_path):
    path = write(tmp_path, "# ok\nEDGEAPP_PORT=9000\nTHREADS=many\n")
    with pytest.raises(ConfigError) as e:
        load(path, environ={})
    assert "THREADS='many' in %s line 3: not a whole number" % path in str(e.value)


def test_bad_flag_names_the_flag():
    with pytest.raises(ConfigError) as e:
        load(environ={}, flags={"port": "-1"})
    assert "--port='-1' on the command line: must be at least 0" in str(e.value)


@pytest.mark.parametrize("line, words", [
    ("EDGEAPP_PROT=1", "unknown setting 'EDGEAPP_PROT'"),
    ("just words", "expected KEY=value"),
    ("EDGEAPP_TOKEN='open", "unterminated ' quote"),
    ('EDGEAPP_TOKEN="a" b', "unexpected text after the quoted value"),
])
def test_bad_file_lines(tmp_path, line, words):
    path = write(tmp_path, "EDGEAPP_PORT=1\n" + line + "\n")
    with pytest.raises(ConfigError) as e:
        load(path, environ={})
    assert words in str(e.value) and "line 2" in str(e.value) and path in str(e.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        load(str(tmp_path / "nope.conf"), environ={})
    assert "nope.conf" in str(e.value) and "cannot read" in str(e.value)


def test_describe_never_shows_the_token():
    s = load(environ={"EDGEAPP_TOKEN": "hunter2"})
    assert s.token == "hunter2"
    assert "hunter2" not in s.describe() and "token=set" in s.describe()


def test_every_setting_has_an_environment_variable():
    # Other settings may join; these must stay (clients' deployments and the image's config use them).
    assert set(config.env_name(n) for n in config.FIELDS) >= set([
        "EDGEAPP_HOST", "EDGEAPP_PORT", "EDGEAPP_THREADS", "EDGEAPP_QUEUE_DEPTH", "EDGEAPP_REQUEST_TIMEOUT",
        "EDGEAPP_MAX_BODY_BYTES", "EDGEAPP_MAX_PIXELS", "EDGEAPP_MAX_MIDS", "EDGEAPP_MODEL_DIR", "EDGEAPP_TOKEN",
        "EDGEAPP_MEMORY_BUDGET_MB", "EDGEAPP_MEMORY_POLICY", "EDGEAPP_LITE_THREADS", "EDGEAPP_BOARD",
        "EDGEAPP_PIDFILE", "EDGEAPP_CONSOLE", "EDGEAPP_LOG", "EDGEAPP_LOG_MAX_BYTES"])


# ---- settings of an installed service (board images) --------------------------------------------

def test_staging_root_prefixes_absolute_paths_only(tmp_path):
    path = write(tmp_path, "EDGEAPP_MODEL_DIR=/opt/edgeapp/models\nEDGEAPP_PIDFILE=/run/edgeapp/edgeapp.pid\n"
                           "EDGEAPP_LOG=syslog\nEDGEAPP_CONSOLE=/dev/console\n")
    s = load(path, environ={"EDGEAPP_ROOT": "/stage/"})
    assert (s.model_dir, s.pidfile, s.log, s.console) == (
        "/stage/opt/edgeapp/models", "/stage/run/edgeapp/edgeapp.pid", "syslog", "/stage/dev/console")
    # The default model folder is where `make setup` builds (the checkout's), not below the root.
    assert load(environ={"EDGEAPP_ROOT": "/stage"}).model_dir == config.default_model_dir()
    assert load(environ={"EDGEAPP_ROOT": "/stage", "EDGEAPP_MODEL_DIR": "build/m"}).model_dir == "build/m"
    assert load(path, environ={}).pidfile == "/run/edgeapp/edgeapp.pid"


def test_service_files_fall_back_to_the_run_dir():
    files = config.service_files(load(environ={"EDGEAPP_ROOT": "/stage"}))
    assert files == {"pidfile": "/stage/run/edgeapp/edgeapp.pid", "supervisor": "/stage/run/edgeapp/supervise.pid",
                     "log": "/stage/run/edgeapp/edgeapp.log"}
    files = config.service_files(load(environ={"EDGEAPP_PIDFILE": "/var/run/e/e.pid", "EDGEAPP_LOG": "journal"}))
    assert files == {"pidfile": "/var/run/e/e.pid", "supervisor": "/var/run/e/supervise.pid", "log": "journal"}


@pytest.mark.parametrize("var, value, words", [
    ("EDGEAPP_PIDFILE", "run/e.pid", "must be an absolute path"),
    ("EDGEAPP_LOG", "messages", "must be 'syslog', 'journal' or an absolute file path"),
    ("EDGEAPP_LOG_MAX_BYTES", "1K", "must be at least 4096"),
    ("EDGEAPP_LITE_THREADS", "-1", "must be at least 0"),
    ("EDGEAPP_WORKER_CPUS", "1-", "not a CPU list"),
    ("EDGEAPP_WORKER_CPUS", "3-1", "not a CPU list"),
])
def test_bad_image_settings(var, value, words):
    with pytest.raises(ConfigError) as e:
        load(environ={var: value})
    assert var in str(e.value) and words in str(e.value)


def test_worker_cpus_are_a_cpu_list():
    assert load(environ={"EDGEAPP_WORKER_CPUS": " 1, 3-4 "}).worker_cpus == "1,3,4"
    assert load(environ={"EDGEAPP_WORKER_CPUS": ""}).worker_cpus is None
    assert config.cpu_set("2-3,0") == {0, 2, 3} and config.cpu_set(None) == set()


def test_shell_assignments_survive_a_posix_shell(tmp_path):
    import subprocess
    odd = "/tmp/it's a \"test\" $HOME `x`"
    s = load(environ={"EDGEAPP_BOARD": odd, "EDGEAPP_TOKEN": "secret", "EDGEAPP_LOG_MAX_BYTES": "8K"})
    text = config.shell_assignments(s)
    assert "secret" not in text  # the init script does not need the token
    out = subprocess.run(["sh", "-c", text + '\nprintf "%s|%s|%s" "$cfg_board" "$cfg_log_max_bytes" "$cfg_supervisor"'],
                         stdout=subprocess.PIPE, universal_newlines=True, timeout=10).stdout
    assert out == "%s|8192|/run/edgeapp/supervise.pid" % odd


# ---- the serve command refuses bad settings before loading anything -----------------------------

def test_serve_refuses_a_bad_flag(run_python):
    res = run_python("-m", "edgeapp", "serve", "--port", "http")
    assert res.returncode == 2
    assert "--port='http' on the command line: not a whole number" in res.stderr


def test_serve_refuses_a_bad_environment_value(run_python):
    res = run_python("-m", "edgeapp", "serve", threads="0")
    assert res.returncode == 2 and "EDGEAPP_THREADS='0' from the environment: must be at least 1" in res.stderr


def test_serve_refuses_a_bad_config_file(run_python, tmp_path):
    path = write(tmp_path, "EDGEAPP_QUEUE_DEPTH=deep\n")
    res = run_python("-m", "edgeapp", "serve", "--config", path)
    assert res.returncode == 2 and "EDGEAPP_QUEUE_DEPTH='deep' in %s line 1" % path in res.stderr


def test_serve_refuses_a_missing_model_dir(run_python, tmp_path):
    res = run_python("-m", "edgeapp", "serve", model_dir=tmp_path / "none")
    assert res.returncode == 2 and "does not exist" in res.stderr
