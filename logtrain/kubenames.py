"""Hostname and tag of container log lines, as the original logtrain derives
them (pkg/input/kubernetes/kubernetes.go) from the Kubernetes API.

The file tailer calls ``parse_log_name`` on a file name and ``Namer.names``
for its lines. ``names`` answers at once, from the cache or from the file
name (the original's fallback); API look-ups run in one background greenlet,
so a slow or unreachable API server never stalls tailing, and lines read after
the answer arrives carry the real names. Owners (ReplicaSet, Deployment, ...)
are cached by namespace, kind and name and refreshed after a TTL, so a
thousand pods of a few Deployments cost a thousand pod look-ups once and a
few owner look-ups per TTL.
"""

from __future__ import annotations

import re
import time
from typing import Any

import gevent
from gevent.queue import Queue

from logtrain.kubeapi import KubeClient, KubeError

HOSTNAME_ANNOTATION = "logtrain.akkeris.io/hostname"
TAG_ANNOTATION = "logtrain.akkeris.io/tag"
MULTILINE_ANNOTATION = "logtrain.akkeris.io/multiline"  # read by the file tailer
APP_LABEL = "akkeris.io/app-name"
DYNO_LABEL = "akkeris.io/dyno-type"
ONEOFF_LABEL = "akkeris.io/oneoff"

# the original's kubeDetailsFromFileName, anchored at the start: unanchored,
# its first label needs two characters, so "a.b-0_..." gave the pod ".b-0"
# and "Web_..." the pod "eb"
_FILE = re.compile(r"^(?P<pod>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)"
                   r"_(?P<ns>[^_]+)_(?P<container>.+)-(?P<id>[a-z0-9]{64})\.log$")

# owner kinds the chain follows (lower case, singular and plural) -> API path
_KINDS = {}
for _kind, _group in (("replicaset", "apis/apps/v1"), ("deployment", "apis/apps/v1"),
                      ("daemonset", "apis/apps/v1"), ("statefulset", "apis/apps/v1"),
                      ("job", "apis/batch/v1"), ("cronjob", "apis/batch/v1")):
    _KINDS[_kind] = _KINDS[_kind + "s"] = (_group, _kind + "s")

Names = tuple[str, str]


def parse_log_name(name: str) -> tuple[str, str, str] | None:
    """(pod, namespace, container) of ``<pod>_<ns>_<container>-<64 hex>.log``
    (a path or a bare name), None for any other name."""
    m = _FILE.search(name.rsplit("/", 1)[-1])
    if m is None:
        return None
    return m["pod"], m["ns"], m["container"]


def _akkeris_tag(parts: list[str]) -> str:
    if len(parts) < 2:
        return ""
    pod_id = "-".join(parts[-2:])
    app_dyno = "-".join(parts[:-2]).split("--", 1)
    return (app_dyno[1] if len(app_dyno) == 2 else "web") + "." + pod_id


def fallback_names(pod: str, namespace: str, akkeris: bool) -> Names:
    """The original's deriveHostnameFromPod: names from the pod name alone."""
    parts = pod.split("-")
    if akkeris:
        if len(parts) < 2:
            return pod, ""
        app = "-".join(parts[:-2]).split("--", 1)[0]
        return f"{app}-{namespace}", _akkeris_tag(parts)
    # Go slices parts[:len-2] and panics on a one-part name and yields ".ns"
    # on a two-part one (web-0 of a StatefulSet); both keep a name here.
    base = "-".join(parts[:-2]) if len(parts) > 2 else "-".join(parts[:1])
    return f"{base}.{namespace}", pod


def names_from_objects(pod: dict, top: dict, akkeris: bool) -> Names:
    """The original's getHostnameAndTagFromPod, given the pod's metadata and
    the metadata of the top of its controller chain (the pod's own when it
    has no controller)."""
    name, ns = pod.get("name", ""), pod.get("namespace", "")
    parts = name.split("-")
    notes = top.get("annotations") or {}
    labels = top.get("labels") or {}
    host = notes.get(HOSTNAME_ANNOTATION)
    if host is not None:
        tag = notes.get(TAG_ANNOTATION)
        if tag is not None:
            return host, tag
        return host, (_akkeris_tag(parts) if akkeris else top.get("name", ""))
    if akkeris:
        dyno = labels.get(DYNO_LABEL)
        pod_id = "-".join(parts[-2:])
        if ONEOFF_LABEL in labels:
            return f"{name}-{ns}", f"{dyno or ''}.{pod_id}"
        app = labels.get(APP_LABEL)
        if app is not None and dyno is not None:
            return f"{app}-{ns}", f"{dyno}.{pod_id}"
        return f"{top.get('name', '')}-{ns}", _akkeris_tag(parts)
    return f"{top.get('name', '')}.{ns}", name


def claim_allowed(host: str, namespace: str, akkeris: bool, policy: str) -> bool:
    """Whether an object of ``namespace`` may claim ``host`` (a hostname or a
    glob) with its hostname annotation. With KUBERNETES_HOSTNAME_POLICY=
    namespace (the default) only hostnames of its own namespace: ending in
    ``.NAMESPACE`` (``-NAMESPACE`` with AKKERIS), something before it, and no
    glob character in that suffix, so a glob cannot reach past it. ``any``
    is the original's rule: every claim is allowed."""
    if policy.lower() == "any":
        return True
    suffix = ("-" if akkeris else ".") + namespace.lower()
    h = host.lower()
    return bool(namespace) and len(h) > len(suffix) and h.endswith(suffix)


def _meta(obj: dict) -> dict:
    """The part of an object the naming needs; the rest is not kept."""
    m = obj.get("metadata") or {}
    ctrl = None
    for ref in m.get("ownerReferences") or []:
        if ref.get("controller") is True:
            ctrl = (str(ref.get("kind", "")), str(ref.get("name", "")))
            break
    # only what the naming reads: a Deployment's annotations often hold
    # kilobytes of kubectl's last-applied-configuration
    labels = {k: v for k, v in (m.get("labels") or {}).items() if k.startswith("akkeris.io")}
    notes = m.get("annotations") or {}
    notes = {k: str(notes[k])[:1024] for k in (HOSTNAME_ANNOTATION, TAG_ANNOTATION,
                                                MULTILINE_ANNOTATION) if k in notes}
    return {"name": m.get("name", ""), "namespace": m.get("namespace", ""),
            "labels": labels, "annotations": notes, "controller": ctrl}


class _Unrecognized(Exception):
    pass


class Namer:
    """Names of container log lines, cached. ``names`` never waits for the API."""

    def __init__(self, client: KubeClient | None, *, akkeris: bool = False,
                 only_akkeris: bool = False, exclude_namespaces: str = "", ttl: float = 300.0,
                 backoff_max: float = 30.0, log: Any = None, ratelimit: Any = None,
                 metrics: Any = None, max_pods: int = 10000,
                 hostname_policy: str = "namespace") -> None:
        self.client = client
        self.hostname_policy = hostname_policy
        self.akkeris = akkeris
        self.only_akkeris = only_akkeris
        self.excluded = {n.strip() for n in exclude_namespaces.split(",") if n.strip()}
        self.ttl = ttl
        self.backoff_max = backoff_max
        self.log, self.ratelimit, self.metrics = log, ratelimit, metrics
        self.max_pods = max_pods
        # (namespace, pod) -> [names or None (excluded), resolved at, pod metadata]
        self._pods: dict[tuple[str, str], list] = {}
        self._owners: dict[tuple[str, str, str], tuple[float, dict]] = {}
        self._pending: set[tuple[str, str]] = set()
        self._queue: Queue = Queue()
        self._worker: Any = None  # a greenlet, or the supervisor's Task

    # --- what the tailer calls

    def names(self, pod: str, namespace: str, container: str = "") -> Names | None:
        """(hostname, tag) for the lines of this container, or None when they
        are not to be tailed (EXCLUDE_NAMESPACES, ONLY_AKKERIS)."""
        if namespace in self.excluded:
            return None
        key = (namespace, pod)
        entry = self._pods.get(key)
        if entry is not None and entry[1]:
            if time.monotonic() - entry[1] > self.ttl:
                self._enqueue(key)  # owners' annotations may have changed
            return entry[0]
        self._enqueue(key)
        return fallback_names(pod, namespace, self.akkeris)

    def annotation(self, pod: str, namespace: str, name: str) -> str | None:
        """An annotation of the pod (or of the top of its controller chain),
        once the API has answered; None before, or when it has none."""
        entry = self._pods.get((namespace, pod))
        meta = entry[2] if entry is not None else None
        if meta is None:
            return None
        return meta["annotations"].get(name)

    def forget(self, pod: str, namespace: str) -> None:
        """The pod's files are gone: drop its cache entry."""
        self._pods.pop((namespace, pod), None)

    def start(self, spawn: Any = None) -> None:
        """Starts the background resolver (under the agent's supervisor when
        ``spawn`` is its Supervisor.spawn)."""
        if self.client is None or self._worker is not None:
            return
        if spawn is not None:
            self._worker = spawn("kubernetes-names", self._run)  # a supervised Task
        else:
            self._worker = gevent.spawn(self._run)

    def stop(self) -> None:
        w, self._worker = self._worker, None
        if isinstance(w, gevent.Greenlet):
            w.kill()
        elif w is not None:  # a Task: mark it stopped so the supervisor lets it be
            w.state = "stopped"
            if w.greenlet is not None:
                w.greenlet.kill()

    # --- the background side

    def _enqueue(self, key: tuple[str, str]) -> None:
        if self.client is not None and key not in self._pending:
            self._pending.add(key)
            self._queue.put(key)

    def _run(self) -> None:
        delay = 0.1
        while True:
            key = self._queue.get()
            try:
                self.resolve(*key)
            except KubeError as e:
                # the API is down or refuses us: keep the fallback names, try
                # again after a backoff, and keep the other pods queued
                self._queue.put(key)
                self._note("kubernetes API unavailable; using names from file names",
                           error=str(e), retry_in=round(delay, 2))
                gevent.sleep(delay)
                delay = min(self.backoff_max, delay * 2)
                continue
            except Exception as e:  # noqa: BLE001 - an odd object must not stop the others
                self._note("cannot name a pod from its API objects; using its file name",
                           namespace=key[0], pod=key[1], error=f"{type(e).__name__}: {e}")
                self._store(key, fallback_names(key[1], key[0], self.akkeris), None)
            delay = 0.1
            self._pending.discard(key)

    def resolve(self, namespace: str, pod: str) -> Names | None:
        """Looks the pod up now (blocking this greenlet) and caches the answer.
        Raises KubeError when the API cannot answer; final answers (the pod or
        an owner is gone, an unknown owner kind) give the fallback names."""
        key = (namespace, pod)
        entry = self._pods.get(key)
        meta = entry[2] if entry is not None else None
        if meta is None:
            try:
                meta = _meta(self._get(f"/api/v1/namespaces/{namespace}/pods/{pod}"))
            except KubeError as e:
                if e.unavailable:
                    raise
                return self._store(key, fallback_names(pod, namespace, self.akkeris), None)
        if self.only_akkeris and not any(k.startswith("akkeris.io") for k in meta["labels"]):
            return self._store(key, None, meta)
        try:
            top = self._top(meta)
        except KubeError as e:
            if e.unavailable:
                raise
            self._note("cannot follow the pod's owners; using names from its name", pod=pod,
                       namespace=namespace, error=str(e))
            top = None
        except _Unrecognized as e:
            self._note("unrecognized owner kind; using names from the pod's name", pod=pod,
                       namespace=namespace, kind=str(e))
            top = None
        if top is None:
            names = fallback_names(pod, namespace, self.akkeris)
        else:
            names = names_from_objects(meta, self._claim(top), self.akkeris)
        return self._store(key, names, meta)

    def _top(self, meta: dict) -> dict:
        obj, seen = meta, 0
        while obj["controller"] is not None and seen < 8:
            kind, name = obj["controller"]
            where = _KINDS.get(kind.lower())
            if where is None:
                raise _Unrecognized(kind)
            obj = self._owner(meta["namespace"], where, name)
            seen += 1
        return obj

    def _owner(self, ns: str, where: tuple[str, str], name: str) -> dict:
        key = (ns, where[1], name)
        hit = self._owners.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] <= self.ttl:
            return hit[1]
        meta = _meta(self._get(f"/{where[0]}/namespaces/{ns}/{where[1]}/{name}"))
        self._owners[key] = (now, meta)
        return meta

    def _claim(self, top: dict) -> dict:
        """``top`` without its hostname annotation when the annotation claims
        a hostname outside its namespace (KUBERNETES_HOSTNAME_POLICY): its
        lines then carry the names the object would have without it."""
        host = top["annotations"].get(HOSTNAME_ANNOTATION)
        if host is None or claim_allowed(host, top["namespace"], self.akkeris,
                                         self.hostname_policy):
            return top
        if self.metrics is not None:
            self.metrics.inc("logtrain_hostname_claims_refused_total", by="input")
        self._note("hostname annotation claims a hostname outside its namespace; ignored "
                   "(KUBERNETES_HOSTNAME_POLICY=namespace)", namespace=top["namespace"],
                   name=top["name"], hostname=host)
        notes = {k: v for k, v in top["annotations"].items() if k != HOSTNAME_ANNOTATION}
        return dict(top, annotations=notes)

    def _get(self, path: str) -> dict:
        assert self.client is not None
        try:
            obj = self.client.get(path)
        except KubeError as e:
            if self.metrics is not None:
                self.metrics.inc("logtrain_kubernetes_api_errors_total",
                                 status=str(e.status))
            raise
        return obj

    def _store(self, key: tuple[str, str], names: Names | None, meta: dict | None) -> Names | None:
        if len(self._pods) >= self.max_pods and key not in self._pods:
            self._pods.pop(next(iter(self._pods)))  # the oldest entry
        self._pods[key] = [names, time.monotonic(), meta]
        now = time.monotonic()
        for k in [k for k, (at, _) in self._owners.items() if now - at > 2 * self.ttl]:
            del self._owners[k]
        return names

    def _note(self, msg: str, **fields: Any) -> None:
        if self.log is None:
            return
        held = self.ratelimit.allow(("kubenames", msg)) if self.ratelimit is not None else 0
        if held is not None:
            self.log.warning(msg, **fields, notes_since_last_report=held)


def from_runtime(runtime: Any) -> Namer:
    """The Namer the agent's settings describe, its API client configured from
    KUBE_CONFIG or the in-cluster service account. When neither is there the
    names come from file names alone, and that is logged once."""
    from logtrain.kubeapi import load_config

    c = runtime.config
    client = None
    try:
        client = KubeClient(load_config(c.kube_config), timeout=c.kubernetes_api_timeout)
    except KubeError as e:
        runtime.log.warning("no Kubernetes API; hostnames and tags come from file names",
                            error=str(e))
    return Namer(client, akkeris=c.akkeris, only_akkeris=c.only_akkeris,
                 exclude_namespaces=c.exclude_namespaces, ttl=c.kubernetes_names_ttl,
                 backoff_max=c.datasource_backoff_max, log=runtime.log,
                 ratelimit=runtime.ratelimit, metrics=runtime.metrics,
                 hostname_policy=c.kubernetes_hostname_policy)
