"""Entry point: ``logtrain [run|check-config|settings|version|routes HOSTNAME] [--config FILE]
[--setting ...]``, and ``logtrain tail HOSTNAME...`` (logtrain/tailcli.py)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    # gevent must patch socket and friends before anything imports them. ssl is
    # left out: it costs 4 MB, so logtrain.tls patches and loads it only when a
    # TLS input or a tls/https drain needs it.
    import reprlib
    import sys

    rest = sys.argv[1:] if argv is None else argv
    if rest[:1] == ["tail"]:  # a client of a running agent: no gevent, no settings
        from logtrain.tailcli import main as tail

        return tail(rest[1:])
    _defer_pprint()  # before gevent is imported
    import gevent
    from gevent import monkey

    _skip_gevent_plugins()

    # The hub formats the context of an error report with pprint.saferepr by
    # default; reprlib's bounded repr does the same job without pprint.
    gevent.config.format_context = [reprlib.repr]  # a list: gevent takes the first it can
    # subprocess is left alone too: the agent starts no process, and gevent's
    # version loads subprocess and pickle (0.6 MB).
    monkey.patch_all(ssl=False, subprocess=False)

    from logtrain import __version__, cabundle
    from logtrain.config import ConfigError, load
    from logtrain.settings import SETTINGS

    cabundle.configure()  # before any TLS context: the static executable has no bundle of its own
    parser = _parser(None)
    args = parser.parse_args(argv)
    if args.help:
        # the help of the command asked about: `logtrain run --help` is run's
        _parser(args.command).print_help()
        return 0
    args.command = args.command or "run"

    if args.hostname and args.command != "routes":
        _parser(None).error(f"unexpected argument {args.hostname!r} (only `routes` takes a hostname)")
    if args.command == "version":
        print(f"logtrain {__version__}")
        return 0
    if args.command == "settings":
        from logtrain.settings import markdown_table

        print(markdown_table(), end="")
        return 0
    flags = {s.name: getattr(args, s.name) for s in SETTINGS}
    try:
        cfg = load(config_file=args.config, flags=flags)
        if args.command == "check-config":
            return _check(cfg)
        if args.command == "routes":
            if not args.hostname:
                print("logtrain: usage: logtrain routes HOSTNAME", file=sys.stderr)
                return 2
            from logtrain.routes_cli import show_routes

            return show_routes(cfg, args.hostname)
        from logtrain.agent import Agent

        return Agent(cfg).run()
    except ConfigError as e:
        print(f"logtrain: configuration error: {e}", file=sys.stderr)
        return 2


COMMANDS = {
    "run": ("run the agent (the default command)",
            "Runs the agent: receives logs on the enabled inputs and forwards each line to the "
            "drains its routes name, until SIGTERM or SIGINT."),
    "check-config": ("validate the configuration and print the effective settings",
                     "Validates the configuration (settings, the routes file, TLS files) without "
                     "starting anything. Errors go to stderr with exit status 2, before anything "
                     "else is printed; a good configuration is printed with secrets masked, then "
                     "'configuration OK'."),
    "settings": ("print the table of settings (Markdown)",
                 "Prints every setting with its default and meaning as a Markdown table."),
    "version": ("print the version", "Prints the version."),
    "routes": ("list the routes that match HOSTNAME (asks the running agent)",
               "Asks the running agent, through its routes API (API_TOKEN), which routes match "
               "HOSTNAME, each with its datasource and, for annotations, the object it came "
               "from."),
    "tail": ("follow the lines a running agent routes for HOSTNAME... (live tail)",
             "logtrain tail HOSTNAME... [--url URL] [--token TOKEN] [--json]: see "
             "`logtrain tail --help`."),
}


def _parser(command: str | None):
    """The parser of ``logtrain``, or, for its help only, of one command
    (``logtrain run --help`` describes run, not the whole program)."""
    import argparse

    from logtrain import __version__
    from logtrain.settings import SETTINGS

    def fmt(prog: str) -> argparse.HelpFormatter:
        # A fixed width: asking for the terminal's loads shutil, bz2 and lzma.
        if command is None:  # keep the list of commands as it is written
            return argparse.RawDescriptionHelpFormatter(prog, width=100)
        return argparse.HelpFormatter(prog, width=100)

    takes_settings = command in (None, "run", "check-config", "routes")
    if command is None:
        parser = argparse.ArgumentParser(
            prog="logtrain", formatter_class=fmt, add_help=False,
            usage="logtrain [COMMAND] [--config FILE] [--SETTING VALUE ...]",
            description="Forwards logs from syslog, HTTP and files to drains chosen by dynamic "
            "routes.\n\ncommands:\n"
            + "\n".join(f"  {name:14s}{short}" for name, (short, _) in COMMANDS.items())
            + "\n\n`logtrain COMMAND --help` describes one command.")
        parser.add_argument("command", nargs="?", default=None, choices=tuple(COMMANDS),
                            metavar="COMMAND", help="run (default), check-config, settings, "
                            "version or routes")
    else:
        parser = argparse.ArgumentParser(
            prog=f"logtrain {command}", formatter_class=fmt, add_help=False,
            usage=f"logtrain {command}" + (" HOSTNAME" if command == "routes" else "")
            + (" [--config FILE] [--SETTING VALUE ...]" if takes_settings else ""),
            description=COMMANDS[command][1])
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    if command in (None, "routes"):
        parser.add_argument("hostname", nargs="?", metavar="HOSTNAME",
                            help="the hostname for `routes`")
    if not takes_settings:
        return parser
    parser.epilog = ("Every setting is also read from the environment variable of the same "
                     "name (upper case) and from the TOML file; precedence: flags, environment, "
                     "file, defaults.")
    parser.add_argument("--version", action="version", version=f"logtrain {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (or LOGTRAIN_CONFIG)")
    group = parser.add_argument_group("settings")
    for s in SETTINGS:
        flag = "--" + s.name.lower().replace("_", "-")
        if s.kind == "bool":
            group.add_argument(flag, dest=s.name, action=argparse.BooleanOptionalAction,
                               default=None, help=s.help)
        else:
            group.add_argument(flag, dest=s.name, metavar=s.kind.upper(), default=None,
                               help=s.help)
    return parser


def _defer_pprint() -> None:
    """gevent.util, which gevent's resolver threadpool imports, imports pprint
    for debugging helpers the agent never calls; pprint imports dataclasses,
    inspect, ast and dis (1.1 MB resident). A stand-in module loads the real
    pprint the first time anything is looked up on it (a traceback dump, say)."""
    import importlib
    import sys
    import types

    if "pprint" in sys.modules:
        return

    class _Deferred(types.ModuleType):
        def __getattr__(self, name: str):
            if sys.modules.get("pprint") is self:
                del sys.modules["pprint"]
            return getattr(importlib.import_module("pprint"), name)

    sys.modules["pprint"] = _Deferred("pprint")


def _skip_gevent_plugins() -> None:
    """gevent announces each patch to plugins found through package entry
    points, which loads importlib.metadata, email, zipfile and csv (~1.3 MB
    resident). logtrain uses no gevent plugin; if gevent's hook moves, this
    does nothing and plugins are looked up as usual."""
    try:
        import gevent.events as events

        if callable(getattr(events, "notify_and_call_entry_points", None)):
            events.notify_and_call_entry_points = events.notify
    except ImportError:  # pragma: no cover
        pass


def _check(cfg) -> int:
    """check-config after the settings loaded: the routes file and the TLS
    files are checked first, and any error is printed (stderr, exit 2) before
    anything that could read as a pass; only a clean configuration is listed."""
    import os
    import sys

    errors: list[str] = []
    routes: list = []
    if cfg.routes_file:
        from logtrain.datasources.static import check_routes
        from logtrain.log import Log, RateLimit
        from logtrain.metrics import Metrics
        from logtrain.router import Router
        from logtrain.runtime import Runtime

        rt = Runtime(cfg, Log(cfg.log_level), Metrics(), RateLimit())
        routes, route_errors = check_routes(cfg.routes_file, Router(rt))
        errors += [f"ROUTES_FILE: {e}" for e in route_errors]
    if cfg.syslog_tls:
        from logtrain.tls import server_context

        try:
            server_context(cfg)
        except ValueError as e:
            errors.append(str(e))
    if errors:
        for e in errors:
            print(f"logtrain: configuration error: {e}", file=sys.stderr)
        print(f"logtrain: check-config FAILED: {len(errors)} error(s); the agent would not start",
              file=sys.stderr)
        return 2
    for line in cfg.describe():
        print(line)
    ca = os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")
    print(f"# CA certificates for TLS drains: {ca or 'none found (set SSL_CERT_FILE)'}")
    if cfg.routes_file:
        print(f"# {cfg.routes_file}: {len(routes)} route(s)")
    print("configuration OK")
    return 0
