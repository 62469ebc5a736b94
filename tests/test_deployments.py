"""deployments/kubernetes: every manifest validates against the Kubernetes
OpenAPI schemas (kubernetes-validate, strict: unknown fields are errors), and
the daemonset, service and RBAC say what the agent needs and no more: the
rights the code asks for (logtrain/datasources/kubernetes.py RESOURCES and
VERBS, logtrain/kubenames.py's owner chain), the settings it reads, ports and
probes that match."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from logtrain.datasources.kubernetes import RESOURCES, VERBS
from logtrain.kubenames import _KINDS
from logtrain.settings import SETTINGS

DIR = Path(__file__).resolve().parent.parent / "deployments" / "kubernetes"
DOCS = [(p.name, d) for p in sorted(DIR.glob("*.yaml"))
        for d in yaml.safe_load_all(p.read_text()) if d]
# the schemas of the newest release the package knows, and of an older one still in use
VERSIONS = (kubernetes_validate.latest_version(), "1.29.0")


def kind(k: str) -> dict:
    (doc,) = [d for _, d in DOCS if d["kind"] == k]
    return doc


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name,doc", DOCS, ids=[f"{n}:{d['kind']}" for n, d in DOCS])
def test_manifest_validates_against_the_schema(name, doc, version):
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_what_is_wrong():
    ds = copy.deepcopy(kind("DaemonSet"))
    ds["spec"]["template"]["spec"]["containers"][0]["resurces"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, VERSIONS[0], strict=True)
    ds = copy.deepcopy(kind("DaemonSet"))
    ds["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, VERSIONS[0], strict=True)


def test_rbac_is_exactly_what_the_agent_uses():
    rules = kind("ClusterRole")["rules"]
    granted = {(g, r): sorted(rule["verbs"])
               for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    read = ["get", "list", "watch"]
    wanted = {("", "pods"): read,
              **{(g, r): read for g, r in (("apps", "replicasets"), ("apps", "deployments"),
                                           ("apps", "daemonsets"), ("apps", "statefulsets"),
                                           ("batch", "jobs"), ("batch", "cronjobs"))},
              ("authorization.k8s.io", "selfsubjectaccessreviews"): ["create"]}
    assert granted == wanted
    # the code asks for nothing beyond it: the datasource's list+watch ...
    for resource, (_, group, _) in RESOURCES.items():
        assert set(VERBS) <= set(granted[(group, resource)])
    # ... and the file input's owner chain (get)
    for path, resource in set(_KINDS.values()):
        group = path.split("/")[1] if path.startswith("apis/") else ""
        assert "get" in granted[(group, resource)]
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
    binding = kind("ClusterRoleBinding")
    sa = kind("ServiceAccount")
    assert binding["roleRef"]["name"] == kind("ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": sa["metadata"]["namespace"]}]


def test_daemonset_init_resources_mounts_probes():
    ds = kind("DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == kind("ServiceAccount")["metadata"]["name"]
    (init,) = pod["initContainers"]
    assert init["command"][:2] == ["sysctl", "-w"]
    assert {a.split("=")[0] for a in init["command"][2:]} == {
        "fs.inotify.max_user_instances", "fs.inotify.max_user_watches"}
    assert init["securityContext"]["privileged"] is True
    (c,) = pod["containers"]
    assert c["resources"]["requests"]["memory"] == "64Mi"
    assert c["resources"]["limits"]["memory"] == "128Mi"
    assert not c["securityContext"].get("privileged")
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e["value"] for e in c["env"]}
    names = {s.name for s in SETTINGS}
    assert set(env) <= names, set(env) - names
    assert env["KUBERNETES"] == env["KUBERNETES_DATASOURCE"] == "true"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
    assert mounts["/var/log"]["hostPath"]["path"] == "/var/log"
    assert mounts[env["STATE_DIR"]]["hostPath"]["path"] == "/var/lib/logtrain"
    routes_dir = env["ROUTES_FILE"].rsplit("/", 1)[0]
    assert mounts[routes_dir]["configMap"]["name"] == "logtrain-routes"
    assert "routes" in kind("ConfigMap")["data"]
    # /healthz (alive) and /readyz (ready to take traffic) on the HTTP port
    http = next(p["containerPort"] for p in c["ports"] if p["name"] == "http")
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": http}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": http}


def test_service_ports_match_the_container_and_the_defaults():
    svc = kind("Service")
    pod = kind("DaemonSet")["spec"]["template"]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    container = {p["name"]: (p["containerPort"], p.get("protocol", "TCP"))
                 for p in pod["spec"]["containers"][0]["ports"]}
    defaults = {s.name: s.default for s in SETTINGS}
    for p in svc["spec"]["ports"]:
        assert container[p["name"]] == (p["targetPort"], p["protocol"])
    assert container["http"][0] == defaults["HTTP_PORT"]
    assert container["syslog-tcp"][0] == defaults["SYSLOG_TCP_PORT"]
    assert container["syslog-udp"] == (defaults["SYSLOG_UDP_PORT"], "UDP")
    assert container["grpc-als"][0] == defaults["ENVOY_PORT"]
