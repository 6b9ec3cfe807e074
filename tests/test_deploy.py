"""The deployment recipes parse and agree with each other and with the code: the Kubernetes
Dask cluster, the Prefect work pool's job template, the deployments, storage, secret and
image (kubectl and a cluster are not available to the tests; these are the settings a
recipe needs to work)."""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def recipe() -> dict:
    return {
        "dask": _yaml(K8S / "dask-cluster.yaml"),
        "storage": _yaml(K8S / "storage.yaml"),
        "secret": _yaml(K8S / "secret.example.yaml"),
        "template": json.loads((K8S / "base-job-template.json").read_text()),
        "prefect": _yaml(K8S / "prefect.yaml"),
        "prefect_local": _yaml(ROOT / "deploy" / "prefect.yaml"),
        "dockerfile": (K8S / "Dockerfile").read_text(),
    }


def _job(template: dict) -> dict:
    return template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]


def _defaults(template: dict) -> dict:
    return {k: v.get("default") for k, v in template["variables"]["properties"].items()}


def test_the_dask_cluster_is_an_operator_resource_with_single_threaded_workers(recipe):
    dask = recipe["dask"]
    assert dask["apiVersion"] == "kubernetes.dask.org/v1" and dask["kind"] == "DaskCluster"
    worker = dask["spec"]["worker"]
    assert isinstance(worker["replicas"], int) and worker["replicas"] >= 1
    (container,) = worker["spec"]["containers"]
    args = container["args"]
    assert args[:2] == ["dask", "worker"]
    assert args[args.index("--nthreads") + 1] == "1"
    limit = args[args.index("--memory-limit") + 1]
    assert limit.replace("GiB", "Gi") == container["resources"]["limits"]["memory"]
    assert container["resources"]["limits"]["cpu"] == "1"  # one worker process per core


def test_flows_reach_the_scheduler_the_operator_serves(recipe):
    dask, template = recipe["dask"], recipe["template"]
    meta = dask["metadata"]
    service = dask["spec"]["scheduler"]["service"]
    port = next(p for p in service["ports"] if p["name"] == "tcp-comm")
    (scheduler,) = dask["spec"]["scheduler"]["spec"]["containers"]
    assert any(p["name"] == port["targetPort"] for p in scheduler["ports"])
    assert service["selector"]["dask.org/cluster-name"] == meta["name"]
    address = _defaults(template)["env"]["GOVERNANCE_DASK_ADDRESS"]
    assert address == (
        f"tcp://{meta['name']}-scheduler.{meta['namespace']}.svc.cluster.local:{port['port']}"
    )


def test_workers_and_flow_runs_share_image_data_folder_and_credentials(recipe):
    dask, template, storage, secret = (
        recipe["dask"], recipe["template"], recipe["storage"], recipe["secret"]
    )
    defaults = _defaults(template)
    job = _job(template)
    (flow_container,) = job["containers"]
    (worker,) = dask["spec"]["worker"]["spec"]["containers"]
    (scheduler,) = dask["spec"]["scheduler"]["spec"]["containers"]
    assert worker["image"] == scheduler["image"] == defaults["image"]
    assert flow_container["image"] == "{{ image }}"
    home = defaults["env"]["GOVERNANCE_HOME"]
    worker_env = {e["name"]: e.get("value") for e in worker["env"]}
    assert worker_env["GOVERNANCE_HOME"] == home
    claim = storage["metadata"]["name"]
    assert "ReadWriteMany" in storage["spec"]["accessModes"]
    for container, volumes in (
        (worker, dask["spec"]["worker"]["spec"]["volumes"]),
        (flow_container, job["volumes"]),
    ):
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        by_claim = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in volumes}
        assert [mounts[n] for n, c in by_claim.items() if c == claim] == [home]
        assert {"secretRef": {"name": secret["metadata"]["name"]}} in container["envFrom"]
    assert "GOVERNANCE_DB_URL" in secret["stringData"]
    assert "GOVERNANCE_DB_URL" not in defaults["env"]  # credentials only from the secret
    namespaces = {
        dask["metadata"]["namespace"], storage["metadata"]["namespace"],
        secret["metadata"]["namespace"], defaults["namespace"],
    }
    assert len(namespaces) == 1


def test_every_placeholder_of_the_job_template_is_a_declared_variable(recipe):
    template = recipe["template"]
    text = json.dumps(template["job_configuration"])
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text))
    declared = set(template["variables"]["properties"])
    assert used <= declared, used - declared
    assert {"command", "env", "namespace", "job_manifest"} <= set(template["job_configuration"])
    assert _job(template)["restartPolicy"] == "Never"


def test_kubernetes_deployments_are_the_local_ones_on_the_kubernetes_pool(recipe):
    ours, local = recipe["prefect"], recipe["prefect_local"]

    def same_parts(doc: dict) -> dict:
        return {
            d["name"]: (d["entrypoint"], d.get("triggers"), d.get("schedules"))
            for d in doc["deployments"]
        }

    assert same_parts(ours) == same_parts(local)
    variables = set(recipe["template"]["variables"]["properties"])
    for d in ours["deployments"]:
        assert d["work_pool"]["name"] == "governance-k8s"
        assert set(d["work_pool"].get("job_variables", {})) <= variables
        module, name = d["entrypoint"].split(":")
        flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), name)
        assert hasattr(flow, "fn")  # a Prefect flow
        params = set(flow.parameters.properties)
        assert set(d.get("parameters", {})) <= params
        for trigger in d.get("triggers", []):
            assert set(trigger.get("parameters", {})) <= params


def test_the_image_holds_the_project_where_the_deployments_look_for_it(recipe):
    docker = recipe["dockerfile"]
    workdir = re.search(r"^WORKDIR\s+(\S+)", docker, re.M).group(1)
    pull = recipe["prefect"]["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert pull["directory"] == workdir
    assert _defaults(recipe["template"])["env"]["GOVERNANCE_PROJECT_DIR"] == workdir
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]]
    for package in packages:
        assert re.search(rf"^COPY {package} \./{package}$", docker, re.M), package
    python = re.search(r"^FROM python:(\d+\.\d+)", docker, re.M).group(1)
    assert tuple(map(int, python.split("."))) >= (3, 11)
    (worker,) = recipe["dask"]["spec"]["worker"]["spec"]["containers"]
    dask_config = next(e["value"] for e in worker["env"] if e["name"] == "DASK_CONFIG")
    assert dask_config.startswith(workdir) and (
        ROOT / Path(dask_config).relative_to(workdir)
    ).is_file()
