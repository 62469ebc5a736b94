"""KUBERNETES=true: every container log of this node, from KUBERNETES_LOG_PATH
(default /var/log/containers, symlinks into /var/log/pods kubelet writes).

Files are named ``<pod>_<namespace>_<container>-<64 hex container id>.log``;
other names are skipped with one debug line each. The format is detected per
file from its first byte: ``{`` is Docker's json-file, anything else CRI
(containerd, CRI-O). Each line becomes a packet with its own timestamp,
severity 6 (info) for stdout and 3 (err) for stderr, facility 1 (user) (with
AKKERIS=true severity and facility 0, as the original sends them), and
the hostname and tag of its pod (logtrain/kubenames.py: from the Kubernetes
API, the file name meanwhile); the routes of every datasource apply to them. Reading, rotation, checkpoints and backpressure are
the tailer's (logtrain/tailer.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from logtrain.inputs.base import Input
from logtrain.kubenames import MULTILINE_ANNOTATION, Namer, from_runtime, parse_log_name
from logtrain.tail import CRIParser, DockerParser
from logtrain.tailer import Tailer


class KubernetesInput(Input):
    name = "kubernetes"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        cfg = self.rt.config
        self.dir = cfg.kubernetes_log_path
        self.skipped: set[str] = set()
        self.tailer: Tailer | None = None
        self.namer: Namer | None = None

    def describe(self) -> str:
        return f"{self.name} logs in {self.dir}"

    def start(self) -> None:
        if not os.path.isdir(self.dir):
            raise ValueError(f"KUBERNETES_LOG_PATH: {self.dir} is not a directory")
        self.namer = from_runtime(self.rt)
        self.namer.start(self.rt.tasks.spawn)
        self.tailer = Tailer(self.rt, self.router, self.name, self._discover, self._describe,
                             [self.dir], names=self._names, multiline=self._multiline,
                             structured=True)
        self.tailer.start()

    def stop(self) -> None:
        if self.tailer is not None:
            self.tailer.stop()
        if self.namer is not None:
            self.namer.stop()

    def close(self) -> None:
        if self.tailer is not None:
            self.tailer.close()

    def _discover(self) -> list[str]:
        try:
            names = os.listdir(self.dir)
        except OSError as e:
            if self.rt.ratelimit.allow(("k8s-dir", self.dir)) is not None:
                self.rt.log.warning("cannot list KUBERNETES_LOG_PATH", path=self.dir,
                                    error=e.strerror)
            return []
        out = []
        for n in names:
            parsed = parse_log_name(n)
            if parsed is None:
                if n not in self.skipped:
                    self.skipped.add(n)
                    self.rt.log.debug("skipping a file that is not a container log", file=n)
                continue
            out.append(os.path.join(self.dir, n))
        return out

    def _names(self, path: str) -> tuple[str, str] | None:
        """The hostname and tag of a file's lines now (None: not to be tailed:
        EXCLUDE_NAMESPACES, ONLY_AKKERIS)."""
        parsed = parse_log_name(os.path.basename(path))
        if parsed is None or self.namer is None:
            return None
        return self.namer.names(*parsed)

    def _multiline(self, path: str) -> str | None:
        """The pod's logtrain.akkeris.io/multiline annotation (a mode, or start:REGEX)."""
        parsed = parse_log_name(os.path.basename(path))
        if parsed is None or self.namer is None:
            return None
        return self.namer.annotation(parsed[0], parsed[1], MULTILINE_ANNOTATION)

    def _describe(self, path: str) -> tuple[str, str, Callable[[bytes], Any]] | None:
        names = self._names(path)
        if names is None:
            return None
        hostname, tag = names

        def make_parser(first: bytes) -> Any:
            parser = (DockerParser if first == b"{" else CRIParser)(hostname, tag)
            if self.rt.config.akkeris:
                # as the original sends every container line; its consumers
                # were written for that
                parser.stdout_severity = parser.stderr_severity = parser.facility = 0
            return parser

        return hostname, tag, make_parser
