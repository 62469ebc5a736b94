"""The agent: wires datasources, router, inputs and the HTTP server; owns the
lifecycle (start, signals, graceful shutdown)."""

from __future__ import annotations

import gc
import importlib
import os
import signal
import time
from typing import Any

import gevent
from gevent.event import Event

from logtrain import __version__
from logtrain.config import Config, ConfigError
from logtrain.datasources.static import StaticRoutes
from logtrain.httpserver import HTTPServer
from logtrain.inputs import REGISTRY as INPUTS
from logtrain.inputs.base import Input
from logtrain.log import Log, RateLimit
from logtrain.metrics import Metrics
from logtrain.router import Router
from logtrain.runtime import Runtime


class Agent:
    def __init__(self, config: Config, log: Log | None = None) -> None:
        self.rt = Runtime(config, log or Log(config.log_level), Metrics(), RateLimit(60.0))
        self.router = Router(self.rt)
        self.http = HTTPServer(self.rt)
        self.inputs: list[Input] = []
        self.datasources: list[Any] = []
        self.closers: list[Any] = []  # closed last, after the drains
        self.tails: Any = None  # logtrain.livetail.TailHub when MAX_TAILS > 0
        self.stopping = Event()
        self.loading_routes = False

    def start(self) -> None:
        """Starts everything; raises ConfigError for what the configuration got wrong."""
        rt, cfg = self.rt, self.rt.config
        # Inputs listen before the routes are loaded (in slices that yield):
        # lines that come first wait for them (Router.loading), bounded.
        static = pgds = kds = None
        self._open_spools()
        self.http.starting = lambda: "loading routes" if self.loading_routes else None
        self.loading_routes = True
        if cfg.routes_file:
            static = StaticRoutes(rt, self.router, cfg.routes_file)
            self.router.loading(static.source)
            self.datasources.append(static)
        if cfg.postgres:
            from logtrain.datasources.postgres import PostgresRoutes

            pgds = PostgresRoutes(rt, self.router, cfg.database_url)
            self.router.loading(pgds.source)
            self.datasources.append(pgds)
        if cfg.kubernetes_datasource:
            from logtrain.datasources import kubernetes as kube_routes

            kds = kube_routes.from_runtime(rt, self.router)
            kds.check_access()  # ConfigError naming the missing verb and resource
            self.router.loading(kds.source)
            self.datasources.append(kds)
        if cfg.api_token:
            from logtrain.api import RoutesAPI

            table = writable = None
            if cfg.postgres:
                from logtrain.datasources.drains_table import DrainsTable

                table, writable = DrainsTable(cfg.database_url), pgds
                self.closers.append(table)
            RoutesAPI(rt, self.router, self.datasources, table, writable).register(
                self.http, cfg.api_token)
        if cfg.persistent:
            from logtrain.api import PersistentAPI
            from logtrain.persistent_store import PersistentStore

            rt.persistent = PersistentStore(cfg.persistent_database_url,
                                            cfg.drain_max_connections)
            PersistentAPI(rt).register(self.http, cfg.api_token)
        if cfg.metrics:
            self.http.add("/metrics", ("GET",), lambda env, body: (
                "200 OK", [("Content-Type", "text/plain; version=0.0.4")],
                rt.metrics.render().encode()))
            from logtrain.origmetrics import OriginalMetrics

            orig = OriginalMetrics(rt, self.router)
            rt.metrics.collectors.append(orig.render)
            rt.tasks.spawn("original-metrics", orig.run)
        if cfg.max_tails or cfg.status_page:
            from logtrain.status import serve

            self.tails = serve(rt, self.router, self.http, self.inputs, self.datasources)
        for setting, target in INPUTS.items():
            if not getattr(cfg, setting.lower()):
                continue
            module, cls = target.split(":")
            inp = getattr(importlib.import_module(module), cls)(rt, self.router, self.http)
            try:
                inp.start()
            except OSError as e:
                raise ConfigError(f"{setting}: cannot listen for {inp.describe()}: {e.strerror or e}") from None
            except ValueError as e:
                raise ConfigError(str(e)) from None
            self.inputs.append(inp)
        try:
            self.http.start()
        except OSError as e:
            raise ConfigError(f"HTTP_PORT: cannot listen on {cfg.bind_address}:{cfg.http_port}: {e.strerror or e}") from None
        if static is not None:
            errors = static.load()
            if errors:
                raise ConfigError("ROUTES_FILE: " + "; ".join(errors))
            self.router.loaded(static.source)
        if pgds is not None:
            error = pgds.load()
            if error:
                rt.log.error("postgres datasource unavailable at start; retrying in the "
                             "background", database=pgds.safe_url, error=error)
            self.router.loaded(pgds.source)
        if kds is not None:
            kds.load()
            self.router.loaded(kds.source)
        self.loading_routes = False
        for ds in self.datasources:
            ds.start()
        if cfg.stats_interval:
            rt.tasks.spawn("stats", self._stats_loop)
        self.http.readiness = self._ready
        rt.log.info("logtrain started", version=__version__,
                    inputs=",".join(i.describe() for i in self.inputs),
                    datasources=",".join(d.describe() for d in self.datasources),
                    routes=self.router.route_count(), http=self.http.address,
                    http_serves=",".join(self.http.paths()))

    def _ready(self) -> tuple[bool, str]:
        """/readyz: inputs listening (start() got this far) and every
        datasource's routes loaded at least once."""
        if self.stopping.is_set():
            return False, "stopping"
        if self.loading_routes:
            return False, "loading routes"
        for ds in self.datasources:
            if getattr(ds, "connected", True) is False and not getattr(ds, "rows", None):
                return False, f"{ds.describe()} has not loaded its routes yet"
        return True, ""

    def _open_spools(self) -> None:
        """The drains' disk spools, when STATE_DIR can hold them; without them
        a full drain buffer drops (counted), as it said at start."""
        cfg = self.rt.config
        if not cfg.spool_max_bytes:
            return
        from logtrain.spools import Spools

        root = os.path.join(cfg.state_dir, "spool")
        try:
            os.makedirs(root, mode=0o700, exist_ok=True)
            if not os.access(root, os.W_OK | os.X_OK):
                raise PermissionError(13, "not writable")
        except OSError as e:
            self.rt.log.error("no disk spool: a drain whose buffer fills will drop lines",
                              directory=root, error=e.strerror or str(e))
            return
        self.rt.spools = Spools(self.rt, cfg.state_dir, cfg.spool_max_bytes,
                                cfg.spool_total_max_bytes)

    def run(self) -> int:
        # before start(): inputs listen while the routes load, and a SIGTERM
        # then must stop the agent as it would later
        for sig in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(sig, self.stop, sig)
        try:
            self.start()
        except ConfigError:
            self.shutdown(quiet=True)
            raise
        _tune_gc()
        self.stopping.wait()
        self.shutdown()
        return 0

    def stop(self, sig: int | None = None) -> None:
        if not self.stopping.is_set():
            self.rt.log.info("stopping", signal=signal.Signals(sig).name if sig else "")
        self.stopping.set()

    def shutdown(self, quiet: bool = False) -> None:
        """Stops accepting, flushes the drains for up to SHUTDOWN_TIMEOUT seconds."""
        rt = self.rt
        started = time.monotonic()
        for inp in self.inputs:
            inp.stop()
        if self.tails is not None:
            self.tails.close()  # their streams end cleanly before the server stops
        self.http.stop()
        for ds in self.datasources:
            ds.stop()
        rt.tasks.stop_all()
        buffered = sum(d.buffered + d.inflight for d in self.router.drains.values())
        self.router.close(rt.config.shutdown_timeout)
        for inp in self.inputs:
            inp.close()
        if rt.persistent is not None:
            rt.persistent.close()  # after the drains: they flush into it
        for c in self.closers:
            c.close()
        lost = rt.metrics.total("logtrain_drain_dropped_total", reason="shutdown")
        if not quiet:
            rt.log.info("logtrain stopped", flushed_bytes=buffered,
                        undelivered_at_shutdown=lost,
                        seconds=round(time.monotonic() - started, 2))

    def _stats_loop(self) -> None:
        rt = self.rt
        m = rt.metrics
        while True:
            gevent.sleep(rt.config.stats_interval)
            rt.log.info("stats",
                        received=m.total("logtrain_input_frames_total"),
                        rejected=m.total("logtrain_input_rejected_total"),
                        dead=m.total("logtrain_dead_packets_total"),
                        sent=m.total("logtrain_drain_sent_total"),
                        dropped=m.total("logtrain_drain_dropped_total"),
                        drains=len(self.router.drains),
                        buffered_bytes=sum(d.buffered + d.inflight
                                           for d in self.router.drains.values()))

def _tune_gc() -> None:
    """Packets are made and freed by the thousand, and never form cycles: the
    collector's default (a pass every 700 new objects) cost as much as parsing
    a file line. What start-up built is frozen, never scanned again, and the
    youngest generation is collected every 20,000 objects instead."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)

