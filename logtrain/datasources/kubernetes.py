"""Routes from Kubernetes annotations (KUBERNETES_DATASOURCE=true).

Deployments, daemonsets, statefulsets, replicasets and pods carrying
``logtrain.akkeris.io/drains`` (drain URLs separated by commas or semicolons)
route the hostname of their ``logtrain.akkeris.io/hostname`` annotation, or
``NAME.NAMESPACE`` (``NAME-NAMESPACE`` with AKKERIS), to those drains, as the
original logtrain's datasource does. Each kind is listed (in pages) across all
namespaces and then watched from the list's resourceVersion with bookmarks;
a 410 Gone, a broken or silent stream or an unreadable event makes it list
again (with backoff) and reconcile, applying only the differences, so routes
and drains that did not change are never touched.

Annotations are written by whoever may edit a workload: their routes are
untrusted under the trust policy (Router.check_route), and a hostname
annotation may claim only hostnames of its own namespace unless
KUBERNETES_HOSTNAME_POLICY=any (kubenames.claim_allowed). Only kind,
namespace, name, resourceVersion and the two annotations of each object are
read (logtrain.kubejson); only annotated objects are remembered.
"""

from __future__ import annotations

import random
import re
from typing import Any
from urllib.parse import urlencode

import gevent

from logtrain.config import ConfigError
from logtrain.kubeapi import KubeClient, KubeError
from logtrain.kubejson import Meta, decode_event, parse_list
from logtrain.kubenames import HOSTNAME_ANNOTATION, claim_allowed
from logtrain.router import Router
from logtrain.runtime import Runtime
from logtrain.trust import Refused
from logtrain.urls import mask_url

DRAINS_ANNOTATION = "logtrain.akkeris.io/drains"
WANTED = frozenset((DRAINS_ANNOTATION, HOSTNAME_ANNOTATION))
# resource -> (API path prefix, API group, kind)
RESOURCES = {
    "deployments": ("/apis/apps/v1", "apps", "Deployment"),
    "daemonsets": ("/apis/apps/v1", "apps", "DaemonSet"),
    "statefulsets": ("/apis/apps/v1", "apps", "StatefulSet"),
    "replicasets": ("/apis/apps/v1", "apps", "ReplicaSet"),
    "pods": ("/api/v1", "", "Pod"),
}
VERBS = ("list", "watch")
PAGE_SIZE = 100  # items per list page: one page's text is what a list holds at once
HOSTNAME_CLAIM = "hostname_claim"
_SPLIT = re.compile(r"[,;]")

Key = tuple[str, str, str]  # (resource, namespace, name)
Route = tuple[str, str]  # (hostname, drain URL)


def split_drains(text: str) -> list[str]:
    """Drain URLs of an annotation: separated by commas (the original's
    README) or semicolons (its code), spaces around them ignored, each once."""
    out: list[str] = []
    for part in _SPLIT.split(text):
        url = part.strip()
        if url and url not in out:
            out.append(url)
    return out


class Entry:
    """An annotated object: its annotations as read, the routes in effect and
    those refused (with the reason)."""

    __slots__ = ("raw", "routes", "refused")

    def __init__(self, raw: tuple[str, str | None]) -> None:
        self.raw = raw
        self.routes: list[Route] = []
        self.refused: list[tuple[str, str, str]] = []  # (hostname, url, reason)


class KubernetesRoutes:
    source = "kubernetes"

    def __init__(self, rt: Runtime, router: Router, client: KubeClient) -> None:
        self.rt = rt
        self.router = router
        self.client = client
        cfg = rt.config
        self.akkeris = cfg.akkeris
        self.policy = cfg.kubernetes_hostname_policy.lower()
        self.objects: dict[Key, Entry] = {}
        self.rv: dict[str, str] = {r: "" for r in RESOURCES}
        self.watching: dict[str, bool] = {r: False for r in RESOURCES}
        self.failures: dict[str, int] = {r: 0 for r in RESOURCES}
        m = rt.metrics
        m.gauge("logtrain_datasource_connected",
                lambda: 1 if all(self.watching.values()) else 0, source=self.source)
        m.gauge("logtrain_kubernetes_annotated_objects", lambda: len(self.objects))

    def describe(self) -> str:
        return f"kubernetes {mask_url(self.client.config.server)}"

    # ----------------------------------------------------------------- lifecycle

    def check_access(self) -> None:
        """Asks the API (SelfSubjectAccessReview) whether this account may list
        and watch every kind in all namespaces; raises ConfigError naming each
        missing verb and resource. An unreachable API is logged and left to
        the watchers' retries: a DaemonSet must not crash-loop on a blip."""
        missing = []
        for res, (_, group, _) in RESOURCES.items():
            for verb in VERBS:
                attrs = {"verb": verb, "resource": res}
                if group:
                    attrs["group"] = group
                review = {"apiVersion": "authorization.k8s.io/v1",
                          "kind": "SelfSubjectAccessReview",
                          "spec": {"resourceAttributes": attrs}}
                try:
                    answer = self.client.post(
                        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
                except KubeError as e:
                    self.rt.log.error("kubernetes datasource: cannot check permissions "
                                      "(SelfSubjectAccessReview); going on", error=str(e))
                    return
                status = answer.get("status") or {}
                if status.get("allowed") is not True:
                    why = status.get("reason") or status.get("evaluationError") or ""
                    missing.append(f"verb {verb!r} on resource {res!r}"
                                   f"{f' (group {group})' if group else ''}"
                                   f"{f': {why}' if why else ''}")
        if missing:
            raise ConfigError(
                "KUBERNETES_DATASOURCE: the Kubernetes API does not allow this account "
                + "; ".join(missing) + " in all namespaces. Grant get, list and watch on "
                "deployments, daemonsets, statefulsets, replicasets (apps) and pods "
                "(deployments/kubernetes/logtrain-rbac.yaml)")

    def load(self) -> None:
        """Lists every kind once now, so routes are in effect before inputs
        start; a kind the API cannot list now is listed by its watcher."""
        for res in RESOURCES:
            try:
                self._list(res)
            except KubeError as e:
                self.rt.log.error("kubernetes datasource: cannot list; retrying in the "
                                  "background", resource=res, error=str(e))
                if e.status == 0:
                    break  # unreachable: one timeout at start is enough, the tasks retry
        self.rt.log.info("kubernetes routes loaded", objects=len(self.objects),
                         routes=sum(len(e.routes) for e in self.objects.values()))

    def start(self) -> None:
        for res in RESOURCES:
            self.rt.tasks.spawn(f"kubernetes-routes-{res}", lambda r=res: self._run(r))

    def stop(self) -> None:
        for res in RESOURCES:
            self.rt.tasks.stop(f"kubernetes-routes-{res}")
            self.watching[res] = False
        self.client.close()

    # ----------------------------------------------------------------- list and watch

    def _list(self, res: str) -> None:
        """Lists ``res`` page by page and reconciles: objects absent from the
        list lose their routes, the others get exactly their differences."""
        prefix = RESOURCES[res][0]
        seen: set[Key] = set()
        cont, rv = "", ""
        while True:
            query = {"limit": str(PAGE_SIZE)}
            if cont:
                query["continue"] = cont
            text = self.client.get_text(f"{prefix}/{res}?{urlencode(query)}")
            try:
                page = parse_list(text, WANTED)
            except ValueError as e:
                raise KubeError(f"list of {res}: not a list ({e})", 200) from None
            del text
            for meta in page.items:
                key = (res, meta.namespace, meta.name)
                if DRAINS_ANNOTATION in meta.notes:
                    seen.add(key)
                self.apply(key, meta)
            rv = page.rv or rv
            cont = page.cont
            gevent.sleep(0)  # other kinds, inputs and /health between pages
            if not cont:
                break
        for key in [k for k in self.objects if k[0] == res and k not in seen]:
            self.apply(key, None)
        self.rv[res] = rv

    def _run(self, res: str) -> None:
        rt = self.rt
        prefix = RESOURCES[res][0]
        timeout = max(1, int(rt.config.kubernetes_watch_timeout))
        while True:
            try:
                if not self.rv[res]:
                    self._list(res)
                    if self.failures[res]:
                        rt.log.info("kubernetes datasource: listed again and reconciled",
                                    resource=res, objects=len(self.objects),
                                    failed_attempts=self.failures[res])
                        self.failures[res] = 0
                self.watching[res] = True
                for typ, meta in self.client.watch(f"{prefix}/{res}", self.rv[res], timeout,
                                                   decode=self._decode):
                    if meta.rv:
                        self.rv[res] = meta.rv
                    rt.metrics.inc("logtrain_kubernetes_events_total", resource=res, type=typ)
                    if typ == "BOOKMARK":
                        continue
                    key = (res, meta.namespace, meta.name)
                    self.apply(key, None if typ == "DELETED" else meta)
                # the server ended the watch (timeoutSeconds): watch on from rv
            except KubeError as e:
                self.watching[res] = False
                self.rv[res] = ""  # list again and reconcile
                self.failures[res] += 1
                n = self.failures[res]
                delay = min(rt.config.datasource_backoff_max, 0.1 * 2 ** min(n - 1, 16))
                delay *= random.uniform(0.5, 1.0)
                if e.status == 410:
                    rt.log.info("kubernetes watch expired; listing again", resource=res,
                                retry_in=round(delay, 2))
                else:
                    rt.metrics.inc("logtrain_datasource_errors_total", source=self.source)
                    if n == 1 or rt.ratelimit.allow(("kube-watch", res)) is not None:
                        rt.log.warning("kubernetes watch failed; routes in effect are kept",
                                       resource=res, error=str(e), retry_in=round(delay, 2))
                gevent.sleep(delay)

    @staticmethod
    def _decode(line: bytes) -> tuple[str, Meta]:
        return decode_event(line.decode("utf-8"), WANTED)

    # ----------------------------------------------------------------- routes

    def hostname(self, meta: Meta) -> str:
        host = meta.notes.get(HOSTNAME_ANNOTATION)
        if host is not None:
            return host.strip()
        return f"{meta.name}{'-' if self.akkeris else '.'}{meta.namespace}"

    def apply(self, key: Key, meta: Meta | None) -> None:
        """Makes the routes of object ``key`` those its annotations (``meta``,
        None: gone) ask for, adding and removing only the difference."""
        old = self.objects.get(key)
        drains = meta.notes.get(DRAINS_ANNOTATION) if meta is not None else None
        if drains is None:
            if old is not None:
                del self.objects[key]
                for host, url in old.routes:
                    self.router.remove_route(self.source, host, url)
            return
        assert meta is not None
        raw = (drains, meta.notes.get(HOSTNAME_ANNOTATION))
        if old is not None and old.raw == raw:
            return  # a status or spec change: same routes
        entry = Entry(raw)
        host = self.hostname(meta)
        wanted = [(host, url) for url in split_drains(drains)]
        before = old.routes if old is not None else []
        for route in before:
            if route not in wanted:
                self.router.remove_route(self.source, *route)
        what = f"{RESOURCES[key[0]][2]} {key[1]}/{key[2]}"
        if not claim_allowed(host, key[1], self.akkeris, self.policy):
            for h, url in wanted:
                if (h, url) in before:
                    self.router.remove_route(self.source, h, url)
            entry.refused = [(h, url, HOSTNAME_CLAIM) for h, url in wanted]
            self.rt.metrics.inc("logtrain_routes_refused_total", len(wanted),
                                source=self.source, reason=HOSTNAME_CLAIM)
            self.rt.metrics.inc("logtrain_hostname_claims_refused_total", by="datasource")
            self._warn("hostname annotation claims a hostname outside the object's namespace; "
                       "its drains are refused (KUBERNETES_HOSTNAME_POLICY=namespace)",
                       object=what, hostname=host)
            self.objects[key] = entry
            return
        for route in wanted:
            if route in before:
                entry.routes.append(route)
                continue
            try:
                self.router.add_route(self.source, *route)
            except Refused as e:  # counted and logged by the router's policy
                entry.refused.append((*route, e.reason))
                continue
            except ValueError as e:
                entry.refused.append((*route, str(e)))
                self.rt.metrics.inc("logtrain_route_errors_total", source=self.source)
                self._warn("skipped drain of a kubernetes annotation", object=what,
                           hostname=route[0], endpoint=mask_url(route[1]), error=str(e))
                continue
            entry.routes.append(route)
        self.objects[key] = entry

    def _warn(self, msg: str, **fields: Any) -> None:
        held = self.rt.ratelimit.allow(("kube-routes", msg, fields.get("object")))
        if held is not None:
            self.rt.log.warning(msg, held_back=held, **fields)

    # ----------------------------------------------------------------- routes API

    def listing(self) -> list[dict]:
        out: list[dict] = []
        for (res, ns, name), e in self.objects.items():
            obj = {"kind": RESOURCES[res][2], "namespace": ns, "name": name}
            out += [{"hostname": h, "endpoint": mask_url(u), "source": self.source,
                     "object": obj} for h, u in e.routes]
            out += [{"hostname": h, "endpoint": mask_url(u), "source": self.source,
                     "object": obj, "error": why} for h, u, why in e.refused]
        return out


def from_runtime(rt: Runtime, router: Router) -> KubernetesRoutes:
    """The datasource with its API client (KUBE_CONFIG or the pod's service
    account); ConfigError when neither is there."""
    from logtrain.kubeapi import load_config

    c = rt.config
    try:
        cfg = load_config(c.kube_config)
    except KubeError as e:
        raise ConfigError(f"KUBERNETES_DATASOURCE: {e}") from None
    return KubernetesRoutes(rt, router, KubeClient(cfg, timeout=c.kubernetes_api_timeout,
                                                   maxsize=len(RESOURCES) + 1))
