"""Pure parts of the Kubernetes datasource: the streaming pick of kind,
namespace, name and annotations out of API JSON (logtrain/kubejson.py), how a
drains annotation splits, and the hostname-claim rule (kubenames.claim_allowed)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logtrain.datasources.kubernetes import WANTED, split_drains
from logtrain.kubejson import decode_event, parse_list
from logtrain.kubenames import claim_allowed

D, H = "logtrain.akkeris.io/drains", "logtrain.akkeris.io/hostname"


def test_only_what_routing_needs_is_kept():
    item = {"kind": "Deployment", "spec": {"template": {"metadata": {"annotations": {
        D: "syslog+tcp://template-only:1"}}}},
            "metadata": {"name": "web", "namespace": "prod", "resourceVersion": "42",
                         "managedFields": [{"f:metadata": {"f:annotations": {D: {}}}}],
                         "labels": {"name": "not-me"},
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                         json.dumps({"metadata": {"annotations": {D: "x"}}}),
                                         D: "a;b", H: "web.prod", "other": "x"}},
            "status": {"name": "nope"}}
    page = parse_list(json.dumps({"kind": "DeploymentList", "metadata": {
        "resourceVersion": "99", "continue": "next"}, "items": [item, {"metadata": {}}]}),
        WANTED)
    assert (page.rv, page.cont, len(page.items)) == ("99", "next", 2)
    m = page.items[0]
    assert (m.kind, m.namespace, m.name, m.rv) == ("Deployment", "prod", "web", "42")
    assert m.notes == {D: "a;b", H: "web.prod"}
    assert page.items[1].notes == {} and page.items[1].name == ""
    typ, ev = decode_event(json.dumps({"type": "MODIFIED", "object": item}), WANTED)
    assert typ == "MODIFIED" and ev.notes == m.notes
    typ, err = decode_event('{"type":"ERROR","object":{"kind":"Status","code":410,'
                            '"message":"too old resource version"}}', WANTED)
    assert (typ, err.code, err.message) == ("ERROR", 410, "too old resource version")


@pytest.mark.parametrize("bad", ['{"type":"ADDED","object":{"metadata":{"name":', "[1]", "",
                                 '{"type":"ADDED"}', '{"type":"ADDED","object":{}} trailing',
                                 '{"type":"ADDED","object":{"metadata":{"annotations":'
                                 '{"logtrain.akkeris.io/drains": nope}}}}', "\x00\xff"])
def test_malformed_events_are_errors(bad: str):
    with pytest.raises(ValueError):
        decode_event(bad, WANTED)


@given(st.text(max_size=200))
def test_any_text_is_an_event_or_a_value_error(text: str):
    try:
        decode_event(text, WANTED)
    except ValueError:
        pass


def test_drains_split_on_commas_and_semicolons():
    assert split_drains(" syslog://a:1 ; https://b/x,syslog+tcp://c:2;;, syslog://a:1 ") == [
        "syslog://a:1", "https://b/x", "syslog+tcp://c:2"]
    assert split_drains(" ; , ") == []


def test_hostname_claims():
    assert claim_allowed("web.prod", "prod", False, "namespace")
    assert claim_allowed("*.prod", "prod", False, "namespace")
    assert claim_allowed("a.b.prod", "prod", False, "namespace")
    for host in ("web.other", "prod", ".prod", "web.prod.evil", "*", "*prod", "web.pro[d]",
                 "web-prod"):
        assert not claim_allowed(host, "prod", False, "namespace"), host
    assert claim_allowed("app-prod", "prod", True, "namespace")
    assert not claim_allowed("app.prod", "prod", True, "namespace")
    assert claim_allowed("WEB.PROD", "prod", False, "namespace")
    assert claim_allowed("billing.other", "prod", False, "any")
