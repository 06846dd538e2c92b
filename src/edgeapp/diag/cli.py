"""The edgeapp-diag command line: summary (the default), selftest and config."""
import argparse
import os
import sys
import textwrap
import time

from edgeapp import __version__, config
from edgeapp.diag.console import WIDTH, emit, to_ascii
from edgeapp.diag.facts import gather
from edgeapp.diag.summary import summary_lines

BUDGET_S = 1.7  # the whole summary, leaving margin under the promised 2 s


def load_settings(config_file):
    """(settings in force, None) or (the defaults, the config's error): a broken config is
    reported, not fatal."""
    try:
        return config.load(config_file), None
    except config.ConfigError as e:
        return config.load(None, environ={config.ROOT_ENV: os.environ.get(config.ROOT_ENV, "")}), str(e)


def cmd_summary(args):
    deadline = time.monotonic() + BUDGET_S
    settings, error = load_settings(args.config)
    lines, ok = summary_lines(gather(settings, error, deadline))
    log_from = next((i for i, l in enumerate(lines) if l.startswith("log ")), None)
    emit(lines, sys.stdout, log_from)
    return 0 if ok else 1


def cmd_selftest(args):
    from edgeapp.diag.selftest import run  # here, so the summary never imports the bundle reader

    settings, error = load_settings(args.config)
    if error:
        print("config: ERROR %s" % error)
        return 1
    lines, ok = run(settings, in_process=args.in_process)
    emit(lines, sys.stdout)
    return 0 if ok else 1


def cmd_config(args):
    try:
        s = config.load(args.config)
    except config.ConfigError as e:
        print("edgeapp: %s" % e, file=sys.stderr)
        return 2
    if args.shell:
        print(config.shell_assignments(s))
        return 0
    for name in config.FIELDS:
        print("\n".join(_setting_lines(s, name)))
    return 0


def _setting_lines(settings, name):
    """'name             value  (source)', the token shown only as set or not."""
    value = getattr(settings, name)
    if name == "token":
        value = "set" if value else None
    text = "%-16s %s  (%s)" % (name, "-" if value is None else value, settings.sources[name])
    return textwrap.wrap(to_ascii(text), WIDTH, subsequent_indent=" " * 17, break_on_hyphens=False,
                         break_long_words=False)


def parser():
    p = argparse.ArgumentParser(prog="edgeapp-diag", description="edgeapp diagnostics for the serial console")
    p.add_argument("--config", metavar="FILE", help="settings file (default: $EDGEAPP_CONFIG)")
    p.add_argument("--version", action="version", version="edgeapp " + __version__)
    sub = p.add_subparsers(dest="command")
    sub.add_parser("summary", help="service state, models, faces, memory, temperature, log (the default)")
    ps = sub.add_parser("selftest", help="run every model on its bundled sample and check the result")
    ps.add_argument("--in-process", action="store_true", help="load the models here even if the service runs")
    pc = sub.add_parser("config", help="the settings in force and where each comes from")
    pc.add_argument("--shell", action="store_true", help="as cfg_<name>='value' lines for the init script")
    return p


COMMANDS = {None: cmd_summary, "summary": cmd_summary, "selftest": cmd_selftest, "config": cmd_config}


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `edgeapp-diag | head`: the reader has all it wanted
        sys.stderr.close()
        return 1
