"""The agent: wires datasources, router, inputs and the HTTP server; owns the
lifecycle (start, signals, graceful shutdown)."""

from __future__ import annotations

import gc
import importlib
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
        self.stopping = Event()

    def start(self) -> None:
        """Starts everything; raises ConfigError for what the configuration got wrong."""
        rt, cfg = self.rt, self.rt.config
        if cfg.routes_file:
            ds = StaticRoutes(rt, self.router, cfg.routes_file)
            errors = ds.load()
            if errors:
                raise ConfigError("ROUTES_FILE: " + "; ".join(errors))
            self.datasources.append(ds)
        if cfg.postgres:
            from logtrain.datasources.postgres import PostgresRoutes

            pgds = PostgresRoutes(rt, self.router, cfg.database_url)
            error = pgds.load()
            if error:
                rt.log.error("postgres datasource unavailable at start; retrying in the "
                             "background", database=pgds.safe_url, error=error)
            self.datasources.append(pgds)
        if cfg.kubernetes_datasource:
            from logtrain.datasources import kubernetes as kube_routes

            kds = kube_routes.from_runtime(rt, self.router)
            kds.check_access()  # ConfigError naming the missing verb and resource
            kds.load()
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
        for ds in self.datasources:
            ds.start()
        if cfg.stats_interval:
            rt.tasks.spawn("stats", self._stats_loop)
        rt.log.info("logtrain started", version=__version__,
                    inputs=",".join(i.describe() for i in self.inputs),
                    datasources=",".join(d.describe() for d in self.datasources),
                    routes=len(self.router.routes), http=self.http.address,
                    http_serves=",".join(self.http.paths()))

    def run(self) -> int:
        try:
            self.start()
        except ConfigError:
            self.shutdown(quiet=True)
            raise
        _tune_gc()
        for sig in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(sig, self.stop, sig)
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

