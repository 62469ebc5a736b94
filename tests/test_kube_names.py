"""Hostnames and tags of container logs from the Kubernetes API: the
production client (logtrain.kubeapi) and naming (logtrain.kubenames) run in a
gevent-patched child process (kube_client.py) against a local server speaking
the API's JSON over TLS (kubeapi.py), configured in cluster (environment plus
a token/CA directory) or from a kubeconfig file."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from peers import make_certs

from logtrain.kubenames import fallback_names, parse_log_name

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOKEN = "tok-" + "s3cr3t" * 6
CID = "0123456789abcdef" * 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def obj(kind: str, name: str, ns: str = "prod", owner: tuple[str, str] | None = None,
        labels: dict | None = None, annotations: dict | None = None) -> dict:
    meta: dict = {"name": name, "namespace": ns, "uid": f"uid-{kind}-{name}",
                  "labels": labels or {}, "annotations": annotations or {}}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Other", "name": "not-the-controller", "uid": "x"},
            {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "y",
             "controller": True}]
    return {"kind": kind, "apiVersion": "v1", "metadata": meta, "spec": {}}


def deployment(name: str, ns: str = "prod", **kw) -> list[dict]:
    """A Deployment, its ReplicaSet and two pods."""
    rs = f"{name}-7d4b9c"
    return [obj("Deployment", name, ns, **kw), obj("ReplicaSet", rs, ns, ("Deployment", name)),
            obj("Pod", f"{rs}-x2x9z", ns, ("ReplicaSet", rs), labels=kw.get("labels")),
            obj("Pod", f"{rs}-abcde", ns, ("ReplicaSet", rs), labels=kw.get("labels"))]


class Api:
    """The test API server in its own process; stop and start keep its port."""

    def __init__(self, d: Path, certs: dict[str, Path] | None, port: int = 0) -> None:
        self.dir = d
        self.certs = certs
        self.port = port
        d.mkdir(parents=True, exist_ok=True)
        self.set_token(TOKEN)
        self.set_objects([])
        self.proc: subprocess.Popen | None = None

    def set_objects(self, objects: list[dict]) -> None:
        tmp = self.dir / "objects.tmp"
        tmp.write_text(json.dumps(objects))
        os.replace(tmp, self.dir / "objects.json")

    def set_token(self, token: str) -> None:
        (self.dir / "token").write_text(token)

    def start(self) -> Api:
        args = [sys.executable, str(HERE / "kubeapi.py"), str(self.dir), str(self.port)]
        if self.certs:
            args += ["--tls", str(self.certs["server.pem"]), str(self.certs["server.key"])]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline().split()[1])
        return self

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def counts(self) -> dict[str, int]:
        import http.client
        import ssl

        ctx = ssl.create_default_context(cafile=str(self.certs["ca.pem"])) if self.certs else None
        c = (http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx) if ctx
             else http.client.HTTPConnection("127.0.0.1", self.port))
        c.request("GET", "/_counts")
        return json.loads(c.getresponse().read())


class Client:
    """kube_client.py: the production Namer in a gevent-patched process."""

    def __init__(self, env: dict[str, str]) -> None:
        full = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
                "SYSLOG_TCP": "true", "ROUTES_FILE": "/dev/null",
                "DATASOURCE_BACKOFF_MAX": "0.3", **env}
        self.proc = subprocess.Popen([sys.executable, str(HERE / "kube_client.py")], env=full,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def cmd(self, **kw) -> dict:
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the client died: " + self.close()
        return json.loads(line)

    def resolve(self, pods: list[tuple[str, str]], timeout: float = 20) -> dict:
        return self.cmd(op="resolve", pods=pods, timeout=timeout)

    def close(self) -> str:
        self.proc.kill()
        _, err = self.proc.communicate()
        return err


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def api(tmp_path, certs):
    a = Api(tmp_path / "api", certs).start()
    yield a
    a.stop()


def sa_dir(tmp_path: Path, certs: dict[str, Path], token: str = TOKEN) -> Path:
    d = tmp_path / "serviceaccount"
    d.mkdir(exist_ok=True)
    (d / "token").write_text(token)
    (d / "ca.crt").write_bytes(certs["ca.pem"].read_bytes())
    (d / "namespace").write_text("logtrain")
    return d


def in_cluster(tmp_path: Path, certs, port: int, **env: str) -> Client:
    return Client({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(port),
                   "KUBE_TEST_SA_DIR": str(sa_dir(tmp_path, certs)), **env})


# --- pure functions


def test_parse_log_name():
    assert parse_log_name(f"/var/log/containers/web-7d4b9c-x2x9z_prod_app-{CID}.log") == \
        ("web-7d4b9c-x2x9z", "prod", "app")
    assert parse_log_name(f"a.b-0_kube-system_side_car-{CID}.log") == ("a.b-0", "kube-system",
                                                                       "side_car")
    for bad in ("syslog", f"web_prod_app-{CID[:-1]}.log", f"web_prod_app-{CID}.log.1",
                f"Web_prod_app-{CID}.log", f"web_prod-{CID}.log", "web_prod_app.log"):
        assert parse_log_name(bad) is None, bad


def test_fallback_names_follow_the_original():
    assert fallback_names("web-7d4b9c-x2x9z", "prod", False) == ("web.prod", "web-7d4b9c-x2x9z")
    assert fallback_names("my-api-7d4b9c-x2x9z", "prod", False) == ("my-api.prod",
                                                                    "my-api-7d4b9c-x2x9z")
    assert fallback_names("web-0", "db", False) == ("web.db", "web-0")  # Go: ".db"
    assert fallback_names("lonely", "db", False) == ("lonely.db", "lonely")  # Go: panics
    assert fallback_names("shop--worker-7d4b9c-x2x9z", "prod", True) == \
        ("shop-prod", "worker.7d4b9c-x2x9z")
    assert fallback_names("shop-7d4b9c-x2x9z", "prod", True) == ("shop-prod", "web.7d4b9c-x2x9z")
    assert fallback_names("lonely", "prod", True) == ("lonely", "")


# --- against the API server


def test_controller_chains_in_cluster_over_tls(tmp_path, certs, api):
    api.set_objects([
        *deployment("web"),
        obj("DaemonSet", "agent", "kube-system"),
        obj("Pod", "agent-q7k2p", "kube-system", ("DaemonSet", "agent")),
        obj("StatefulSet", "db", "data"),
        obj("Pod", "db-0", "data", ("StatefulSet", "db")),
        obj("CronJob", "nightly", "ops"),
        obj("Job", "nightly-28833", "ops", ("CronJob", "nightly")),
        obj("Pod", "nightly-28833-zz9k1", "ops", ("Job", "nightly-28833")),
        obj("Job", "migrate", "ops"),
        obj("Pod", "migrate-p4k8s", "ops", ("Job", "migrate")),
        obj("Pod", "standalone", "ops"),
        obj("Pod", "roll-5f6d7-abcde", "ops", ("Rollout", "roll")),
        obj("ReplicaSet", "orphan-6c5b4", "ops", ("Deployment", "deleted")),
        obj("Pod", "orphan-6c5b4-zzzzz", "ops", ("ReplicaSet", "orphan-6c5b4")),
        obj("Pod", "odd-7d4b9c-x2x9z", "ops", labels=["not", "a", "map"]),
    ])
    c = in_cluster(tmp_path, certs, api.port)
    try:
        pods = [("web-7d4b9c-x2x9z", "prod"), ("agent-q7k2p", "kube-system"), ("db-0", "data"),
                ("nightly-28833-zz9k1", "ops"), ("migrate-p4k8s", "ops"), ("standalone", "ops"),
                ("roll-5f6d7-abcde", "ops"), ("orphan-6c5b4-zzzzz", "ops"), ("gone-1-2", "ops"),
                ("odd-7d4b9c-x2x9z", "ops")]
        out = c.resolve(pods)
    finally:
        err = c.close()
    assert out["first"]["prod/web-7d4b9c-x2x9z"] == ["web.prod", "web-7d4b9c-x2x9z"]
    assert out["first"]["data/db-0"] == ["db.data", "db-0"]  # from the file name, at once
    assert out["names"] == {
        "prod/web-7d4b9c-x2x9z": ["web.prod", "web-7d4b9c-x2x9z"],
        "kube-system/agent-q7k2p": ["agent.kube-system", "agent-q7k2p"],
        "data/db-0": ["db.data", "db-0"],
        "ops/nightly-28833-zz9k1": ["nightly.ops", "nightly-28833-zz9k1"],
        "ops/migrate-p4k8s": ["migrate.ops", "migrate-p4k8s"],
        "ops/standalone": ["standalone.ops", "standalone"],
        # an owner kind the chain does not know, an owner that is gone, a pod
        # that is gone: the original's fallback, from the pod's name
        "ops/roll-5f6d7-abcde": ["roll.ops", "roll-5f6d7-abcde"],
        "ops/orphan-6c5b4-zzzzz": ["orphan.ops", "orphan-6c5b4-zzzzz"],
        "ops/gone-1-2": ["gone.ops", "gone-1-2"],
        "ops/odd-7d4b9c-x2x9z": ["odd.ops", "odd-7d4b9c-x2x9z"],  # malformed: no crash
    }
    counts = api.counts()
    assert counts["/apis/batch/v1/namespaces/ops/cronjobs/nightly"] == 1
    assert counts["/apis/apps/v1/namespaces/prod/deployments/web"] == 1
    assert "unrecognized owner kind" in err and "Rollout" in err
    assert "cannot name a pod from its API objects" in err and "task crashed" not in err


def test_distinct_names_through_the_chain(tmp_path, certs, api):
    # owners named unlike their pods prove the hostname comes from the top object
    api.set_objects([obj("Deployment", "frontend", "shop"),
                     obj("ReplicaSet", "rs1", "shop", ("Deployment", "frontend")),
                     obj("Pod", "p-1-2", "shop", ("ReplicaSet", "rs1"))])
    c = in_cluster(tmp_path, certs, api.port)
    try:
        out = c.resolve([("p-1-2", "shop")])
    finally:
        c.close()
    assert out["first"]["shop/p-1-2"] == ["p.shop", "p-1-2"]
    assert out["names"]["shop/p-1-2"] == ["frontend.shop", "p-1-2"]


def test_annotations_on_the_top_object(tmp_path, certs, api):
    h, t = "logtrain.akkeris.io/hostname", "logtrain.akkeris.io/tag"
    api.set_objects([
        *deployment("both", annotations={h: "shop.example", t: "frontend"}),
        *deployment("hostonly", annotations={h: "api.example"}),
        obj("ReplicaSet", "rsnote-1a2b3", "prod", ("Deployment", "plain"),
            annotations={h: "ignored.example"}),
        obj("Deployment", "plain", "prod"),
        obj("Pod", "rsnote-1a2b3-q1w2e", "prod", ("ReplicaSet", "rsnote-1a2b3")),
    ])
    pods = [("both-7d4b9c-x2x9z", "prod"), ("hostonly-7d4b9c-x2x9z", "prod"),
            ("rsnote-1a2b3-q1w2e", "prod")]
    # claims outside the namespace: the original's behaviour, by the compatibility setting
    c = in_cluster(tmp_path, certs, api.port, KUBERNETES_HOSTNAME_POLICY="any")
    try:
        plain = c.resolve(pods)["names"]
    finally:
        c.close()
    c = in_cluster(tmp_path, certs, api.port, AKKERIS="true", KUBERNETES_HOSTNAME_POLICY="any")
    try:
        akk = c.resolve(pods)["names"]
    finally:
        c.close()
    assert plain == {"prod/both-7d4b9c-x2x9z": ["shop.example", "frontend"],
                     "prod/hostonly-7d4b9c-x2x9z": ["api.example", "hostonly"],  # top's name
                     "prod/rsnote-1a2b3-q1w2e": ["plain.prod", "rsnote-1a2b3-q1w2e"]}
    assert akk["prod/both-7d4b9c-x2x9z"] == ["shop.example", "frontend"]
    assert akk["prod/hostonly-7d4b9c-x2x9z"] == ["api.example", "web.7d4b9c-x2x9z"]
    assert akk["prod/rsnote-1a2b3-q1w2e"] == ["plain-prod", "web.1a2b3-q1w2e"]


def test_hostname_annotation_may_claim_only_its_namespace_by_default(tmp_path, certs, api):
    h = "logtrain.akkeris.io/hostname"
    api.set_objects([
        *deployment("own", annotations={h: "shop.prod"}),
        *deployment("thief", annotations={h: "billing.other"}),
        *deployment("akk", annotations={h: "shop-prod"}),
    ])
    pods = [("own-7d4b9c-x2x9z", "prod"), ("thief-7d4b9c-x2x9z", "prod"),
            ("akk-7d4b9c-x2x9z", "prod")]
    c = in_cluster(tmp_path, certs, api.port)
    try:
        plain = c.resolve(pods)["names"]
        metrics = c.cmd(op="metrics")["metrics"]
    finally:
        err = c.close()
    c = in_cluster(tmp_path, certs, api.port, AKKERIS="true")
    try:
        akk = c.resolve(pods)["names"]
    finally:
        c.close()
    assert plain["prod/own-7d4b9c-x2x9z"] == ["shop.prod", "own"]
    # refused: the lines keep the names the deployment would have without it
    assert plain["prod/thief-7d4b9c-x2x9z"] == ["thief.prod", "thief-7d4b9c-x2x9z"]
    assert plain["prod/akk-7d4b9c-x2x9z"] == ["akk.prod", "akk-7d4b9c-x2x9z"]
    assert 'logtrain_hostname_claims_refused_total{by="input"} 2' in metrics
    assert "outside its namespace" in err and "billing.other" in err
    assert akk["prod/akk-7d4b9c-x2x9z"][0] == "shop-prod"
    assert akk["prod/own-7d4b9c-x2x9z"][0] == "own-prod"


def test_akkeris_naming_and_filters(tmp_path, certs, api):
    akk = {"akkeris.io/app-name": "shop", "akkeris.io/dyno-type": "worker"}
    api.set_objects([
        *deployment("shop--worker", "space1", labels=akk),
        obj("Job", "shop-run-1", "space1", labels={**akk, "akkeris.io/oneoff": "true"}),
        obj("Pod", "shop-run-1-a1b2c", "space1", ("Job", "shop-run-1"),
            labels={"akkeris.io/oneoff": "true"}),
        *deployment("unlabelled", "space1", labels={"akkeris.io/x": "1"}),
        *deployment("system", "space1"),
        *deployment("hidden", "kube-system"),
    ])
    pods = [("shop--worker-7d4b9c-x2x9z", "space1"), ("shop-run-1-a1b2c", "space1"),
            ("unlabelled-7d4b9c-x2x9z", "space1"), ("system-7d4b9c-x2x9z", "space1"),
            ("hidden-7d4b9c-x2x9z", "kube-system")]
    c = in_cluster(tmp_path, certs, api.port, AKKERIS="true")
    try:
        out = c.resolve(pods)["names"]
    finally:
        c.close()
    assert out == {"space1/shop--worker-7d4b9c-x2x9z": ["shop-space1", "worker.7d4b9c-x2x9z"],
                   "space1/shop-run-1-a1b2c": ["shop-run-1-a1b2c-space1", "worker.1-a1b2c"],
                   "space1/unlabelled-7d4b9c-x2x9z": ["unlabelled-space1", "web.7d4b9c-x2x9z"],
                   "space1/system-7d4b9c-x2x9z": ["system-space1", "web.7d4b9c-x2x9z"],
                   "kube-system/hidden-7d4b9c-x2x9z": ["hidden-kube-system",
                                                       "web.7d4b9c-x2x9z"]}
    c = in_cluster(tmp_path, certs, api.port, AKKERIS="true", ONLY_AKKERIS="true",
                   EXCLUDE_NAMESPACES="kube-system, other")
    try:
        before = api.counts()
        out = c.resolve(pods[:4], timeout=20)
        hidden = c.cmd(op="names", pod="hidden-7d4b9c-x2x9z", ns="kube-system")
    finally:
        c.close()
    assert hidden == {"names": None}
    assert api.counts().get("/api/v1/namespaces/kube-system/pods/hidden-7d4b9c-x2x9z") == \
        before.get("/api/v1/namespaces/kube-system/pods/hidden-7d4b9c-x2x9z")  # never asked
    assert out["names"]["space1/system-7d4b9c-x2x9z"] is None  # no akkeris.io label
    assert out["names"]["space1/shop--worker-7d4b9c-x2x9z"] == ["shop-space1",
                                                               "worker.7d4b9c-x2x9z"]
    assert out["names"]["space1/unlabelled-7d4b9c-x2x9z"] == ["unlabelled-space1",
                                                              "web.7d4b9c-x2x9z"]


def test_a_thousand_pods_cost_a_thousand_and_a_few_requests(tmp_path, certs, api):
    objects, pods = [], []
    for d in range(4):
        rs = f"app{d}-5d6f7"
        objects += [obj("Deployment", f"app{d}"), obj("ReplicaSet", rs, "prod",
                                                        ("Deployment", f"app{d}"))]
        for i in range(250):
            objects.append(obj("Pod", f"{rs}-p{i:04d}", "prod", ("ReplicaSet", rs)))
            pods.append((f"{rs}-p{i:04d}", "prod"))
    api.set_objects(objects)
    c = in_cluster(tmp_path, certs, api.port)
    try:
        out = c.resolve(pods, timeout=60)
        again = c.resolve(pods, timeout=5)
    finally:
        c.close()
    assert len(out["names"]) == 1000
    assert out["names"]["prod/app3-5d6f7-p0249"] == ["app3.prod", "app3-5d6f7-p0249"]
    assert out["requests"] == 1000 + 4 + 4
    assert again["requests"] == out["requests"]  # cached: nothing more asked
    counts = api.counts()
    assert sum(counts.values()) == 1008
    assert counts["/apis/apps/v1/namespaces/prod/deployments/app2"] == 1


def test_names_follow_annotation_changes_after_the_ttl(tmp_path, certs, api):
    objects = deployment("web")
    api.set_objects(objects)
    c = in_cluster(tmp_path, certs, api.port, KUBERNETES_NAMES_TTL="1")
    try:
        first = c.resolve([("web-7d4b9c-x2x9z", "prod"), ("web-7d4b9c-abcde", "prod")])
        objects[0]["metadata"]["annotations"] = {"logtrain.akkeris.io/hostname": "renamed.prod"}
        api.set_objects(objects)
        later = [c.cmd(op="until", pod=p, ns="prod", want=["renamed.prod", "web"], timeout=10)
                 for p in ("web-7d4b9c-x2x9z", "web-7d4b9c-abcde")]
    finally:
        c.close()
    assert first["names"]["prod/web-7d4b9c-x2x9z"] == ["web.prod", "web-7d4b9c-x2x9z"]
    assert later == [{"names": ["renamed.prod", "web"]}] * 2
    counts = api.counts()
    # pods are looked up once; only their owners again after the TTL
    assert counts["/api/v1/namespaces/prod/pods/web-7d4b9c-x2x9z"] == 1
    assert 2 <= counts["/apis/apps/v1/namespaces/prod/deployments/web"] <= 4


def test_api_down_at_start_then_back(tmp_path, certs):
    port = free_port()
    a = Api(tmp_path / "api", certs, port)
    a.set_objects([obj("Deployment", "store", "shop"),
                   obj("ReplicaSet", "rs-1", "shop", ("Deployment", "store")),
                   obj("Pod", "web-7d4b9c-x2x9z", "shop", ("ReplicaSet", "rs-1"))])
    c = in_cluster(tmp_path, certs, port)
    try:
        first = c.cmd(op="names", pod="web-7d4b9c-x2x9z", ns="shop")
        still = c.resolve([("web-7d4b9c-x2x9z", "shop")], timeout=1.5)
        a.start()
        back = c.resolve([("web-7d4b9c-x2x9z", "shop")], timeout=20)
    finally:
        a.stop()
        err = c.close()
    assert first["names"] == ["web.shop", "web-7d4b9c-x2x9z"]
    assert still["names"]["shop/web-7d4b9c-x2x9z"] == ["web.shop", "web-7d4b9c-x2x9z"]
    assert back["names"]["shop/web-7d4b9c-x2x9z"] == ["store.shop", "web-7d4b9c-x2x9z"]
    assert "kubernetes API unavailable" in err


def test_token_rotation_and_the_token_never_shown(tmp_path, certs, api):
    api.set_objects([*deployment("one"), *deployment("two")])
    c = in_cluster(tmp_path, certs, api.port)
    token_file = tmp_path / "serviceaccount" / "token"
    try:
        before = c.resolve([("one-7d4b9c-x2x9z", "prod")])
        # the kubelet swaps in a new token; the server stops taking the old one
        new = "rotated-" + "n3wt0k3n" * 5
        api.set_token(new)
        tmp = token_file.with_suffix(".new")
        tmp.write_text(new)
        os.replace(tmp, token_file)
        after = c.resolve([("two-7d4b9c-x2x9z", "prod")])
        # a token the server refuses: the error names the status, never the token
        api.set_token("something-else")
        refused = c.cmd(op="get", path="/api/v1/namespaces/prod/pods/one-7d4b9c-abcde")
        unnamed = c.resolve([("one-7d4b9c-abcde", "prod")], timeout=1.5)
        metrics = c.cmd(op="metrics")["metrics"]
    finally:
        err = c.close()
    assert before["names"]["prod/one-7d4b9c-x2x9z"] == ["one.prod", "one-7d4b9c-x2x9z"]
    assert after["names"]["prod/two-7d4b9c-x2x9z"] == ["two.prod", "two-7d4b9c-x2x9z"]
    assert refused["status"] == 401 and "HTTP 401" in refused["error"]
    assert unnamed["names"]["prod/one-7d4b9c-abcde"] == ["one.prod", "one-7d4b9c-abcde"]
    assert 'logtrain_kubernetes_api_errors_total{status="401"}' in metrics
    assert "HTTP 401" in err
    for secret in (TOKEN, new):
        assert secret not in err and secret not in json.dumps(refused) and secret not in metrics


def kubeconfig(path: Path, server: str, ca: Path | None, token: str) -> Path:
    cluster: dict = {"server": server}
    if ca:
        cluster["certificate-authority-data"] = base64.b64encode(ca.read_bytes()).decode()
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "contexts": [{"name": "other", "context": {"cluster": "x", "user": "y"}},
                     {"name": "test", "context": {"cluster": "c1", "user": "u1"}}],
        "clusters": [{"name": "c1", "cluster": cluster}],
        "users": [{"name": "u1", "user": {"token": token}}]}))
    return path


def test_kubeconfig_and_ca_verification(tmp_path, certs, api):
    api.set_objects(deployment("web"))
    good = kubeconfig(tmp_path / "good.json", f"https://localhost:{api.port}", certs["ca.pem"],
                      TOKEN)
    wrong_ca = kubeconfig(tmp_path / "bad.json", f"https://localhost:{api.port}",
                          certs["other-ca.pem"], TOKEN)
    c = Client({"KUBE_CONFIG": str(good)})
    try:
        out = c.resolve([("web-7d4b9c-x2x9z", "prod")])
    finally:
        c.close()
    assert out["names"]["prod/web-7d4b9c-x2x9z"] == ["web.prod", "web-7d4b9c-x2x9z"]
    c = Client({"KUBE_CONFIG": str(wrong_ca)})
    try:
        refused = c.cmd(op="get", path="/api/v1/namespaces/prod/pods/web-7d4b9c-x2x9z")
    finally:
        err = c.close()
    assert refused["status"] == 0 and "CERTIFICATE_VERIFY_FAILED" in refused["error"]
    assert TOKEN not in err and TOKEN not in refused["error"]


def test_no_api_configured_names_from_file_names(tmp_path):
    c = Client({})
    try:
        out = c.cmd(op="names", pod="web-7d4b9c-x2x9z", ns="prod")
    finally:
        err = c.close()
    assert out["names"] == ["web.prod", "web-7d4b9c-x2x9z"]
    assert "no Kubernetes API" in err and "KUBERNETES_SERVICE_HOST" in err


def test_watch_streams_events_and_keeps_the_pool_usable(tmp_path, certs, api):
    api.set_objects(deployment("web"))
    events = [{"type": t, "object": obj("Deployment", n)}
              for t, n in (("ADDED", "a"), ("MODIFIED", "a"), ("BOOKMARK", "b"),
                           ("DELETED", "a"))]
    (api.dir / "events.json").write_text(json.dumps(events))
    c = in_cluster(tmp_path, certs, api.port)
    then = "/apis/apps/v1/namespaces/prod/deployments/web"
    try:
        full = c.cmd(op="watch", path="/apis/apps/v1/deployments", then=then)
        early = c.cmd(op="watch", path="/apis/apps/v1/deployments", then=then, stop_after=1)
        gone = c.cmd(op="watch", path="/apis/apps/v1/deployments", rv="too-old", then=then)
        api.set_token("another")
        refused = c.cmd(op="watch", path="/apis/apps/v1/deployments", then=then)
    finally:
        err = c.close()
    assert full == {"events": [["ADDED", "a"], ["MODIFIED", "a"], ["BOOKMARK", "b"],
                               ["DELETED", "a"]], "error": None, "after": "web"}
    assert early == {"events": [["ADDED", "a"]], "error": None, "after": "web"}
    assert gone["events"] == [] and gone["error"]["status"] == 410 and gone["after"] == "web"
    assert refused["error"]["status"] == 401 and "HTTP 401" in refused["after"]
    assert TOKEN not in json.dumps(refused) and TOKEN not in err
