"""A thin client of the Kubernetes API: GET and watch of JSON objects over urllib3.

Shared by the container-log naming (logtrain.kubenames) and the Kubernetes
datasource. The official ``kubernetes`` package costs about 19 MB resident
once imported (all of kubernetes.client and its models); this module costs
what urllib3 costs, which the agent loads anyway for its HTTP drains.

Configuration comes from the pod's service account (in cluster) or from a
kubeconfig file (``KUBE_CONFIG``, ``--kube-config``). The API server's
certificate is verified with the cluster CA; the bearer token is read from
its file again whenever the file changes, because bound service-account
tokens rotate (about hourly) and an old one stops working. No error message
or log line ever contains the token.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

from logtrain.urls import scrub

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# etcd stores objects of up to 1.5 MiB; an event line is that plus its envelope
MAX_EVENT = 4 << 20


class KubeError(Exception):
    """A failed API call. ``status`` is the HTTP status, 0 when the server
    could not be reached; ``unavailable`` says whether retrying later makes
    sense (network errors, 5xx, 401/403/429) rather than the answer being
    final (404 and other 4xx)."""

    def __init__(self, msg: str, status: int = 0) -> None:
        super().__init__(msg)
        self.status = status

    @property
    def unavailable(self) -> bool:
        return self.status == 0 or self.status >= 500 or self.status in (401, 403, 429)


class KubeConfig:
    """Where the API is and how to authenticate: a server URL, a CA file, and a
    token (a file re-read when it changes, or a fixed value) or a client
    certificate."""

    __slots__ = ("server", "ca_file", "token_file", "token", "cert_file", "key_file", "insecure",
                 "source")

    def __init__(self, server: str, *, ca_file: str = "", token_file: str = "", token: str = "",
                 cert_file: str = "", key_file: str = "", insecure: bool = False,
                 source: str = "") -> None:
        self.server = server.rstrip("/")
        self.ca_file = ca_file
        self.token_file = token_file
        self.token = token
        self.cert_file = cert_file
        self.key_file = key_file
        self.insecure = insecure
        self.source = source  # "in cluster" or the kubeconfig's path, for messages


def in_cluster(env: dict[str, str] | None = None, sa_dir: str = "") -> KubeConfig:
    """The pod's own service account, as client-go's InClusterConfig reads it."""
    env = os.environ if env is None else env
    sa_dir = sa_dir or SA_DIR
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise KubeError("not running in a Kubernetes cluster: KUBERNETES_SERVICE_HOST and "
                        "KUBERNETES_SERVICE_PORT are unset (set KUBE_CONFIG to use a kubeconfig)")
    token_file = os.path.join(sa_dir, "token")
    if not os.path.exists(token_file):
        raise KubeError(f"no service-account token at {token_file}")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 service address
    ca = os.path.join(sa_dir, "ca.crt")
    return KubeConfig(f"https://{host}:{port}", ca_file=ca if os.path.exists(ca) else "",
                      token_file=token_file, source="in cluster")


def from_kubeconfig(path: str, context: str = "") -> KubeConfig:
    """The current (or named) context of a kubeconfig file. Static tokens,
    token files and client certificates are supported; exec and auth-provider
    plugins are not (they run programs the agent should not depend on)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise KubeError(f"kubeconfig {path}: {e.strerror}") from None
    doc = _load_yaml(text, path)
    base = os.path.dirname(os.path.abspath(path))

    def named(section: str, name: str) -> dict:
        for item in doc.get(section) or []:
            if item.get("name") == name:
                return item.get(section[:-1]) or {}
        raise KubeError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")

    ctx_name = context or doc.get("current-context") or ""
    if not ctx_name:
        raise KubeError(f"kubeconfig {path}: no current-context")
    ctx = named("contexts", ctx_name)
    cluster = named("clusters", ctx.get("cluster", ""))
    user = named("users", ctx.get("user", "")) if ctx.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise KubeError(f"kubeconfig {path}: user {ctx.get('user')!r} needs an exec or "
                        "auth-provider plugin, which logtrain does not run; use a token")
    server = cluster.get("server", "")
    if not server:
        raise KubeError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no server")

    def file_or_data(obj: dict, key: str) -> str:
        if obj.get(key + "-data"):
            return _temp_file(base64.b64decode(obj[key + "-data"]))
        p = obj.get(key, "")
        return os.path.join(base, p) if p else ""

    return KubeConfig(server, ca_file=file_or_data(cluster, "certificate-authority"),
                      token_file=os.path.join(base, user["tokenFile"]) if user.get("tokenFile")
                      else "", token=user.get("token", ""),
                      cert_file=file_or_data(user, "client-certificate"),
                      key_file=file_or_data(user, "client-key"),
                      insecure=bool(cluster.get("insecure-skip-tls-verify")), source=path)


def _load_yaml(text: str, path: str) -> dict:
    # JSON is YAML: `kubectl config view --raw -o json` output needs no parser;
    # PyYAML (a dependency of the kubernetes package) reads the usual form.
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise KubeError(f"kubeconfig {path} is YAML and PyYAML is not installed; install it "
                            "or convert the file with `kubectl config view --raw -o json`") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise KubeError(f"kubeconfig {path}: {e}") from None
    if not isinstance(doc, dict):
        raise KubeError(f"kubeconfig {path}: not a kubeconfig document")
    return doc


def _temp_file(data: bytes) -> str:
    # ssl wants certificates and keys as files
    fd, name = tempfile.mkstemp(prefix="logtrain-kube-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return name


def load_config(kube_config: str = "", env: dict[str, str] | None = None) -> KubeConfig:
    """The kubeconfig file when one is given, otherwise the in-cluster account."""
    return from_kubeconfig(kube_config) if kube_config else in_cluster(env)


class KubeClient:
    """GET of API objects as dicts. Cooperative under gevent (urllib3 over
    patched sockets); one connection pool to the API server."""

    def __init__(self, config: KubeConfig, timeout: float = 10.0, maxsize: int = 2) -> None:
        from logtrain.tls import urllib3_module

        urllib3 = urllib3_module()

        self.config = config
        self.timeout = timeout
        self._token = config.token
        self._token_key: tuple | None = None
        kw: dict[str, Any] = {"maxsize": maxsize, "retries": False,
                              "timeout": urllib3.Timeout(connect=timeout, read=timeout)}
        if config.server.startswith("https:"):
            if config.insecure:
                kw["cert_reqs"] = "CERT_NONE"
            else:
                kw["cert_reqs"] = "CERT_REQUIRED"
                if config.ca_file:
                    kw["ca_certs"] = config.ca_file
            if config.cert_file:
                kw["cert_file"] = config.cert_file
                kw["key_file"] = config.key_file or None
        self._pool = urllib3.PoolManager(**kw)
        self.requests = 0

    def _bearer(self) -> str:
        path = self.config.token_file
        if not path:
            return self._token
        try:
            st = os.stat(path)  # follows the ..data symlink a projected volume swaps
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if key != self._token_key:
                with open(path, encoding="utf-8") as f:
                    self._token = f.read().strip()
                self._token_key = key
        except OSError as e:
            if not self._token:
                raise KubeError(f"cannot read the token file {path}: {e.strerror}") from None
        return self._token

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "logtrain"}
        token = self._bearer()
        if token:
            headers["Authorization"] = "Bearer " + token
        return headers

    def _request(self, method: str, path: str, body: bytes | None = None,
                 ok: tuple[int, ...] = (200,)) -> bytes:
        from logtrain.tls import urllib3_module

        urllib3 = urllib3_module()

        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
        url = self.config.server + path
        self.requests += 1
        try:
            r = self._pool.request(method, url, headers=headers, body=body,
                                   preload_content=True)
        except urllib3.exceptions.HTTPError as e:
            raise KubeError(self._scrub(f"{method} {url}: {_reason(e)}"), 0) from None
        if r.status not in ok:
            raise KubeError(self._scrub(f"{method} {url}: HTTP {r.status} "
                                        f"{_status_message(r.data)}"), r.status)
        return r.data

    def get(self, path: str) -> dict:
        """The JSON object at ``path`` (for example /api/v1/namespaces/x/pods/y);
        raises KubeError."""
        return self._object("GET", path, self._request("GET", path))

    def get_text(self, path: str) -> str:
        """The body at ``path`` as text, for callers that parse it themselves
        (logtrain.kubejson) instead of building it as dicts."""
        data = self._request("GET", path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise KubeError(f"GET {self.config.server + path}: the answer is not UTF-8",
                            200) from None

    def post(self, path: str, obj: dict) -> dict:
        """POSTs ``obj`` (a create, such as a SelfSubjectAccessReview) and
        returns the object the server answers with."""
        data = self._request("POST", path, json.dumps(obj).encode(), ok=(200, 201))
        return self._object("POST", path, data)

    def _object(self, method: str, path: str, data: bytes) -> dict:
        url = self.config.server + path
        try:
            obj = json.loads(data)
        except ValueError:
            raise KubeError(f"{method} {url}: the answer is not JSON", 200) from None
        if not isinstance(obj, dict):
            raise KubeError(f"{method} {url}: the answer is not a JSON object", 200)
        return obj

    def watch(self, path: str, resource_version: str = "", timeout_seconds: int = 300,
              decode: Callable[[bytes], tuple[str, Any]] | None = None,
              max_event: int = MAX_EVENT) -> Iterator[tuple[str, Any]]:
        """(type, object) events of a watch on the collection at ``path``
        (ADDED, MODIFIED, DELETED, BOOKMARK), until the server ends the watch
        after about ``timeout_seconds``; a stream silent for longer than that
        (plus the client's timeout) is an error. ``decode`` turns one event
        line into (type, object); by default the object is the parsed dict,
        and an object with ``code`` and ``message`` attributes works as well.
        An ERROR event raises KubeError with its code (410: the resource
        version is too old; list again). An event longer than ``max_event``
        bytes ends the watch with an error instead of growing without bound."""
        from logtrain.tls import urllib3_module

        urllib3 = urllib3_module()

        query = {"watch": "true", "timeoutSeconds": str(timeout_seconds),
                 "allowWatchBookmarks": "true"}
        if resource_version:
            query["resourceVersion"] = resource_version
        url = self.config.server + path + ("&" if "?" in path else "?") + urlencode(query)
        headers = self._headers()
        self.requests += 1
        try:
            # the read timeout bounds the silence between events, not the watch
            r = self._pool.request("GET", url, headers=headers, preload_content=False,
                                   timeout=urllib3.Timeout(connect=self.timeout,
                                                           read=timeout_seconds + self.timeout))
        except urllib3.exceptions.HTTPError as e:
            raise KubeError(self._scrub(f"WATCH {url}: {_reason(e)}"), 0) from None
        decode = decode or _decode_dict
        done = False
        try:
            if r.status != 200:
                raise KubeError(self._scrub(f"WATCH {url}: HTTP {r.status} "
                                            f"{_status_message(r.read())}"), r.status)
            pending: list[bytes] = []  # pieces of an event not yet ended by a newline
            size = 0
            while True:
                try:
                    chunk = r.read1(65536) if hasattr(r, "read1") else r.read(65536)
                except urllib3.exceptions.HTTPError as e:
                    raise KubeError(self._scrub(f"WATCH {url}: {_reason(e)}"), 0) from None
                if not chunk:
                    done = True
                    return
                start = 0
                while True:
                    nl = chunk.find(b"\n", start)
                    if nl < 0:
                        if start < len(chunk):
                            pending.append(chunk[start:])
                            size += len(chunk) - start
                            if size > max_event:
                                raise KubeError(f"WATCH {url}: an event is longer than "
                                                f"{max_event} bytes", 200)
                        break
                    line = chunk[start:nl]
                    start = nl + 1
                    if pending:
                        line = b"".join(pending) + line
                        pending, size = [], 0
                    if not line.strip():
                        continue
                    try:
                        kind, obj = decode(line)
                    except (ValueError, KeyError, TypeError):
                        raise KubeError(f"WATCH {url}: an event is not JSON", 200) from None
                    if kind == "ERROR":
                        code, msg = _error_of(obj)
                        raise KubeError(self._scrub(f"WATCH {url}: {msg}"), code)
                    yield kind, obj
        finally:
            if done:
                r.release_conn()
            else:  # a watch left early still has bytes coming: not reusable
                r.close()

    def _scrub(self, text: str) -> str:
        # belt and braces: a server (or proxy) that echoes the request
        # must not put the token in our log
        return scrub(text, [self._token])

    def close(self) -> None:
        self._pool.clear()


def _decode_dict(line: bytes) -> tuple[str, Any]:
    ev = json.loads(line)
    return ev["type"], ev["object"]


def _error_of(obj: Any) -> tuple[int, str]:
    if isinstance(obj, dict):
        code, msg = obj.get("code"), obj.get("message", "")
    else:
        code, msg = getattr(obj, "code", 0), getattr(obj, "message", "")
    return (code if isinstance(code, int) and code else 500), str(msg)[:300]


def _reason(e: Exception) -> str:
    inner = getattr(e, "reason", None)
    return f"{type(inner or e).__name__}: {inner or e}"


def _status_message(data: bytes) -> str:
    try:
        msg = json.loads(data).get("message", "")
    except (ValueError, AttributeError):
        msg = ""
    return str(msg)[:200]
