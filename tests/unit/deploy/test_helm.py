"""The Helm chart: ``helm lint``, ``helm template`` with the default values and with the on-demand-only
example, every object validated against the Kubernetes schemas (``kubernetes_validate``) or, for KEDA's
kinds, the CRD's openAPIV3Schema; then what the chart promises: pools, spot placement, GPU resources,
drain-matched grace periods, secrets by reference only, settings that exist, a migrate hook."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import current_revision, head_revision
from rendercost.settings import check_toml_keys
from tests.unit.deploy.conftest import (
    CHART,
    EXAMPLES,
    Rendered,
    assert_real_settings,
    helm,
    render,
    run_in_image_env,
)

KUBERNETES_VERSION = "1.33.0"
KEDA_CRDS = Path(__file__).parent / "keda"
KEDA_KINDS = {
    "ScaledObject": "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": "keda.sh_triggerauthentications.yaml",
}
SECRET_ENV = {
    "RENDERCOST_DATABASE_URL",
    "RENDERCOST_REDIS_URL",
    "RENDERCOST_METRICS_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
}
ON_DEMAND_ONLY = EXAMPLES / "on-demand-only.yaml"

pytestmark = pytest.mark.slow  # helm runs, and kubernetes_validate loads its schemas


@pytest.fixture(scope="module")
def default(k8s_bin: Path) -> Rendered:
    return render(k8s_bin)


@pytest.fixture(scope="module")
def on_demand_only(k8s_bin: Path) -> Rendered:
    return render(k8s_bin, ON_DEMAND_ONLY)


def _crd_schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load((KEDA_CRDS / KEDA_KINDS[kind]).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return containers


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def _workers(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["labels"]["rendercost.io/pool"]: d
        for d in rendered.of_kind("Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    }


def test_helm_lint_passes(k8s_bin: Path) -> None:
    for values in ([], ["-f", str(ON_DEMAND_ONLY)]):
        done = helm(k8s_bin, "lint", "--strict", str(CHART), *values)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("which", ["default", "on_demand_only"])
def test_every_rendered_object_is_valid(which: str, request: pytest.FixtureRequest) -> None:
    rendered: Rendered = request.getfixturevalue(which)
    kinds = {obj["kind"] for obj in rendered.objects}
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ScaledObject",
        "TriggerAuthentication",
        "Job",
    } <= kinds
    for obj in rendered.objects:
        if obj["kind"] in KEDA_KINDS:
            jsonschema.validate(obj, _crd_schema(obj["kind"]))
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_a_keda_schema_refuses_a_broken_scaled_object(default: Rendered) -> None:
    """The CRD check can fail: a ScaledObject without its target is refused."""
    broken = yaml.safe_load(yaml.safe_dump(default.of_kind("ScaledObject")[0]))
    del broken["spec"]["scaleTargetRef"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _crd_schema("ScaledObject"))


def test_the_kubernetes_schemas_refuse_a_broken_deployment(default: Rendered) -> None:
    """The built-in check can fail: a container port given as a word is refused."""
    broken = yaml.safe_load(yaml.safe_dump(default.named("Deployment", "rc-rendercost-api")))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_two_pools_on_demand_for_interactive_and_spot_for_batch(default: Rendered) -> None:
    workers = _workers(default)
    assert set(workers) == {"interactive", "batch"}
    for pool, priorities, pricing, capacity in (
        ("interactive", "interactive,batch", "on_demand", "on-demand"),
        ("batch", "batch", "spot", "spot"),
    ):
        spec = workers[pool]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        args = container["args"]
        assert args[0] == "worker"
        assert args[args.index("--priorities") + 1] == priorities
        assert args[args.index("--device") + 1] == "cuda:0"
        assert args[args.index("--metrics-bind") + 1] == "0.0.0.0:9101"
        assert args[args.index("--worker-id") + 1] == "$(POD_NAME)"  # KEDA counts a pool's running jobs by it
        env = _env(container)
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["RENDERCOST_PRICING_MODEL"]["value"] == pricing
        assert spec["nodeSelector"]["karpenter.sh/capacity-type"] == capacity
        assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
        for bound in ("requests", "limits"):
            assert container["resources"][bound]["nvidia.com/gpu"] == 1
        assert "replicas" not in workers[pool]["spec"], "KEDA owns the replica count"
        annotations = workers[pool]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "9101"
    batch_tolerations = workers["batch"]["spec"]["template"]["spec"]["tolerations"]
    assert any(t.get("value") == "spot" for t in batch_tolerations)


def test_grace_period_outlasts_the_drain(default: Rendered, on_demand_only: Rendered) -> None:
    for rendered in (default, on_demand_only):
        for deployment in _workers(rendered).values():
            spec = deployment["spec"]["template"]["spec"]
            drain = int(_env(spec["containers"][0])["RENDERCOST_WORKER_DRAIN_SECONDS"]["value"])
            assert spec["terminationGracePeriodSeconds"] > drain
            liveness = spec["containers"][0]["livenessProbe"]
            assert (
                liveness["periodSeconds"] * liveness["failureThreshold"]
                > spec["terminationGracePeriodSeconds"]
            )


def test_each_pool_has_a_disruption_budget_and_a_scaled_object_to_zero(default: Rendered) -> None:
    workers = _workers(default)
    (auth,) = default.of_kind("TriggerAuthentication")
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref == {"parameter": "connection", "name": "rendercost-database", "key": "keda-connection"}
    for pool, deployment in workers.items():
        name = deployment["metadata"]["name"]
        assert name == f"rc-rendercost-worker-{pool}"
        pdb = default.named("PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        scaled = default.named("ScaledObject", name)
        assert scaled["spec"]["scaleTargetRef"]["name"] == name
        assert scaled["spec"]["minReplicaCount"] == 0
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "postgresql"
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
        assert "COALESCE" in trigger["metadata"]["query"]
        assert math.isfinite(float(trigger["metadata"]["targetQueryValue"]))


def test_secrets_come_from_existing_secrets_only(default: Rendered) -> None:
    assert default.of_kind("Secret") == []
    for obj in [*default.of_kind("Deployment"), *default.of_kind("Job")]:
        for container in _containers(obj):
            for name, item in _env(container).items():
                if name in SECRET_ENV:
                    assert "value" not in item and "secretKeyRef" in item["valueFrom"], name
    api = default.named("Deployment", "rc-rendercost-api")
    token = _env(_containers(api)[0])["RENDERCOST_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": "rendercost-metrics", "key": "token"}


def test_with_s3_and_redis_secrets_named_their_keys_are_referenced(k8s_bin: Path) -> None:
    rendered = render(
        k8s_bin,
        sets=["secrets.s3.name=s3-keys", "secrets.redis.name=redis", "aws.endpointUrlS3=https://s3.internal"],
    )
    for obj in [*rendered.of_kind("Deployment"), *rendered.of_kind("Job")]:
        env = _env(_containers(obj)[0])
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
            "name": "s3-keys",
            "key": "secret-access-key",
        }
        assert env["RENDERCOST_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "redis"
        assert env["AWS_ENDPOINT_URL_S3"]["value"] == "https://s3.internal"


def test_every_rendercost_variable_and_toml_key_is_a_setting(
    default: Rendered, on_demand_only: Rendered
) -> None:
    for rendered in (default, on_demand_only):
        names = {
            name
            for obj in [*rendered.of_kind("Deployment"), *rendered.of_kind("Job")]
            for container in _containers(obj)
            for name in _env(container)
            if name.startswith("RENDERCOST_")
        }
        assert_real_settings(names, origin="helm template")
    (config,) = on_demand_only.of_kind("ConfigMap")
    check_toml_keys(tomllib.loads(config["data"]["rendercost.toml"]), origin="configToml")
    assert default.of_kind("ConfigMap") == []


def test_the_on_demand_only_example_has_one_pool_for_all_work(on_demand_only: Rendered) -> None:
    (pool,) = _workers(on_demand_only).values()
    (container,) = pool["spec"]["template"]["spec"]["containers"]
    assert container["args"][container["args"].index("--priorities") + 1] == "interactive,batch"
    assert _env(container)["RENDERCOST_PRICING_MODEL"]["value"] == "on_demand"
    assert "RENDERCOST_CONFIG" in _env(container)
    assert "karpenter.sh/capacity-type" not in pool["spec"]["template"]["spec"]["nodeSelector"]


def _pools_file(tmp_path: Path, pools: list[dict[str, Any]]) -> Path:
    path = tmp_path / "pools.yaml"
    path.write_text(yaml.safe_dump({"workers": {"pools": pools}}))
    return path


def _pool(name: str, priorities: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "priorities": priorities,
        "maxReplicas": 2,
        "jobsPerWorker": 2,
        "deviceType": "l4",
        "resources": {},
        "pdb": {"maxUnavailable": 1},
    }


def test_pool_names_that_overlap_are_refused(k8s_bin: Path, tmp_path: Path) -> None:
    pools = _pools_file(tmp_path, [_pool("batch", ["batch"]), _pool("batch-large", ["batch"])])
    done = helm(k8s_bin, "template", "rc", str(CHART), "-f", str(pools))
    assert done.returncode != 0 and "overlap" in done.stderr, done.stderr


def test_an_unknown_priority_is_refused(k8s_bin: Path, tmp_path: Path) -> None:
    pools = _pools_file(tmp_path, [_pool("bulk", ["bulk"])])
    done = helm(k8s_bin, "template", "rc", str(CHART), "-f", str(pools))
    assert done.returncode != 0 and "unknown priority" in done.stderr, done.stderr


def test_the_migrate_job_is_a_hook_whose_command_upgrades_a_database(
    default: Rendered, db_url: str, tmp_path: Path
) -> None:
    (job,) = default.of_kind("Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = _containers(job)
    done = run_in_image_env(container["args"], db_url, tmp_path)
    assert done.returncode == 0, done.stderr
    engine = create_db_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
