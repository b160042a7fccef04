"""The Kubernetes manifests validate against the Kubernetes schemas, and agree with the server:
probes on routes that exist, ports, drain timing, the autoscaler's metric."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
VERSION = "1.37"  # the newest schemas kubernetes-validate 1.37.0 bundles


def load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def container() -> dict:
    (only,) = load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return only


def env() -> dict[str, str]:
    return {item["name"]: item["value"] for item in container()["env"]}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_strictly(path):
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, VERSION, strict=True)


def test_strict_validation_rejects_a_misspelt_field():
    """The check above can fail: a typo in a probe is an error, not a silent default."""
    deployment = copy.deepcopy(load("deployment.yaml"))
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSION, strict=True)


def test_probes_hit_routes_that_answer_on_the_served_port(client):
    c = container()
    port = int(env()["VOXLINE_BIND"].rpartition(":")[2])
    assert {p["containerPort"] for p in c["ports"] if p["name"] == "http"} == {port}
    probes = {
        kind: c[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    assert probes["readinessProbe"]["path"] == "/ready"
    assert probes["livenessProbe"]["path"] == "/health"
    for probe in probes.values():
        assert probe["port"] == "http"
        assert client.get(probe["path"]).status_code == 200  # a ready app with a fake engine


def test_readiness_fails_while_draining(make_app, engine):
    app = make_app(engine)
    assert app.test_client().get("/ready").status_code == 200
    app.services.drain()
    response = app.test_client().get("/ready")
    assert response.status_code == 503 and response.get_json()["status"] == "draining"
    assert app.test_client().get("/health").status_code == 200  # alive: not restarted


def test_grace_period_covers_prestop_and_drain():
    spec = load("deployment.yaml")["spec"]["template"]["spec"]
    pre_stop = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = int(env()["VOXLINE_GRACEFUL_TIMEOUT"])
    assert float(env()["VOXLINE_DRAIN_DELAY_S"]) < graceful / 2
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + graceful + 5
    # The startup probe allows minutes of model loading before liveness checks begin.
    startup = container()["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_one_gpu_per_pod_and_selectors_agree():
    deployment, service, pdb = load("deployment.yaml"), load("service.yaml"), load("pdb.yaml")
    resources = container()["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1 and env()["VOXLINE_DEVICE"] == "cuda"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for selector in (
        service["spec"]["selector"],
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"],
    ):
        assert selector.items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_autoscalers_use_a_metric_the_server_exports(client):
    metrics = client.get("/metrics").get_data(as_text=True)
    hpa = load("hpa.yaml")
    assert hpa["spec"]["scaleTargetRef"]["name"] == load("deployment.yaml")["metadata"]["name"]
    name = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    assert re.search(rf"^{name} ", metrics, re.M)
    keda = yaml.safe_load((K8S / "optional" / "keda-scaledobject.yaml").read_text())
    assert keda["spec"]["scaleTargetRef"]["name"] == "voxline"
    assert name in keda["spec"]["triggers"][0]["metadata"]["query"]
