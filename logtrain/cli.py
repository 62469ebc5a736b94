"""Entry point: ``logtrain [run|check-config|settings|version] [--config FILE] [--setting ...]``,
and ``logtrain tail HOSTNAME...`` (logtrain/tailcli.py)."""

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

    import argparse

    from logtrain import __version__
    from logtrain.config import ConfigError, load
    from logtrain.settings import SETTINGS

    parser = argparse.ArgumentParser(
        prog="logtrain",
        # A fixed width: asking for the terminal's loads shutil, bz2 and lzma.
        formatter_class=lambda prog: argparse.HelpFormatter(prog, width=100),
        description="Forwards logs from syslog, HTTP and files to drains chosen by dynamic routes.",
        epilog="Every setting is also read from the environment variable of the same name "
        "(upper case) and from the TOML file; precedence: flags, environment, file, defaults.",
    )
    parser.add_argument("command", nargs="?", default="run", choices=("run", "check-config", "settings", "version", "tail"),
                        help="run the agent (default), validate and print the configuration, "
                        "print the table of settings (Markdown), print the version, or follow "
                        "a running agent's live tail (logtrain tail --help)")
    parser.add_argument("--version", action="version", version=f"logtrain {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (or LOGTRAIN_CONFIG)")
    group = parser.add_argument_group("settings")
    for s in SETTINGS:
        flag = "--" + s.name.lower().replace("_", "-")
        if s.kind == "bool":
            group.add_argument(flag, dest=s.name, action=argparse.BooleanOptionalAction, default=None,
                               help=s.help)
        else:
            group.add_argument(flag, dest=s.name, metavar=s.kind.upper(), default=None, help=s.help)
    args = parser.parse_args(argv)

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
        from logtrain.agent import Agent

        return Agent(cfg).run()
    except ConfigError as e:
        print(f"logtrain: configuration error: {e}", file=sys.stderr)
        return 2


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
    import sys

    from logtrain.datasources.static import check_routes
    from logtrain.log import Log, RateLimit
    from logtrain.metrics import Metrics
    from logtrain.runtime import Runtime

    for line in cfg.describe():
        print(line)
    if cfg.routes_file:
        rt = Runtime(cfg, Log(cfg.log_level), Metrics(), RateLimit())
        from logtrain.router import Router

        routes, errors = check_routes(cfg.routes_file, Router(rt))
        print(f"# {cfg.routes_file}: {len(routes)} route(s)")
        if errors:
            for e in errors:
                print(f"logtrain: configuration error: ROUTES_FILE: {e}", file=sys.stderr)
            return 2
    if cfg.syslog_tls:
        from logtrain.tls import server_context

        try:
            server_context(cfg)
        except ValueError as e:
            print(f"logtrain: configuration error: {e}", file=sys.stderr)
            return 2
    print("configuration OK")
    return 0
