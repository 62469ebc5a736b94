"""KUBERNETES=true: every container log of this node, from KUBERNETES_LOG_PATH
(default /var/log/containers, symlinks into /var/log/pods kubelet writes).

Files are named ``<pod>_<namespace>_<container>-<64 hex container id>.log``;
other names are skipped with one debug line each. The format is detected per
file from its first byte: ``{`` is Docker's json-file, anything else CRI
(containerd, CRI-O). Each line becomes a packet with its own timestamp,
severity 6 (info) for stdout and 3 (err) for stderr, facility 1 (user), and
the hostname and tag of its pod (see ``pod_names``); the routes of every
datasource apply to them. Reading, rotation, checkpoints and backpressure are
the tailer's (logtrain/tailer.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from logtrain.inputs.base import Input
from logtrain.tail import CRIParser, DockerParser
from logtrain.tailer import Tailer

LOG_NAME = re.compile(r"(?P<pod>[^_/]+)_(?P<namespace>[^_/]+)_(?P<container>[^/]+)-"
                      r"(?P<id>[0-9a-f]{64})\.log")
# the generated suffixes of a pod's name: ReplicaSet hash and pod id, or the pod id alone
_POD_SUFFIX = re.compile(r"(?:-[0-9a-f]{6,10})?-[0-9a-z]{5}$")


def parse_log_name(name: str) -> tuple[str, str, str] | None:
    """(pod, namespace, container) of a container log's file name, or None."""
    m = LOG_NAME.fullmatch(name)
    return (m["pod"], m["namespace"], m["container"]) if m else None


def pod_names(pod: str, namespace: str) -> tuple[str, str]:
    """Hostname and tag of a pod's lines from its name alone: ``name.namespace``
    of the workload the pod's generated suffixes point to, and the pod's name.
    (Names from the Kubernetes API, where they differ, take their place.)"""
    base = _POD_SUFFIX.sub("", pod) or pod
    return f"{base}.{namespace}", pod


class KubernetesInput(Input):
    name = "kubernetes"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        cfg = self.rt.config
        self.dir = cfg.kubernetes_log_path
        self.excluded = {n.strip() for n in cfg.exclude_namespaces.split(",") if n.strip()}
        self.skipped: set[str] = set()
        self.tailer: Tailer | None = None

    def describe(self) -> str:
        return f"{self.name} logs in {self.dir}"

    def start(self) -> None:
        if not os.path.isdir(self.dir):
            raise ValueError(f"KUBERNETES_LOG_PATH: {self.dir} is not a directory")
        self.tailer = Tailer(self.rt, self.router, self.name, self._discover, self._describe,
                             [self.dir])
        self.tailer.start()

    def stop(self) -> None:
        if self.tailer is not None:
            self.tailer.stop()

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
            if parsed[1] in self.excluded:
                continue
            out.append(os.path.join(self.dir, n))
        return out

    def _describe(self, path: str) -> tuple[str, str, Callable[[bytes], Any]] | None:
        parsed = parse_log_name(os.path.basename(path))
        if parsed is None:
            return None
        pod, namespace, _ = parsed
        hostname, tag = pod_names(pod, namespace)

        def make_parser(first: bytes) -> Any:
            return (DockerParser if first == b"{" else CRIParser)(hostname, tag)

        return hostname, tag, make_parser
