"""The deployment files for real clusters, checked without a cluster or a container engine.

- deploy/k8s/*.yaml: every KubeRay resource validates against the openAPIV3Schema of its CRD
  (../shared/k8s/crds, the KubeRay CRDs; skipped with the reason when that folder is absent), the
  Deployment's pod template against the PodTemplateSpec schema those CRDs embed; every pod runs the
  image with the Secret `rayapp-env`; the RayService's serveConfigV2 is serve_config.yaml's
  document (render.py --check); the example Secret holds only placeholders and names every
  variable the pods need.
- Dockerfile / .dockerignore: text-level checks only. Images cannot be built or run here (there is
  no container engine on the machines these tests run on), so nothing below starts `docker`.

Fast: no services, no Ray; the CRDs are parsed once per session.
"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
CRDS = ROOT.parent / "shared" / "k8s" / "crds"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVE_CONFIG = ROOT / "serve_config.yaml"
SECRET_NAME = "rayapp-env"
IMAGE = "ghcr.io/rayapp/rayapp"
PLURALS = {"RayCluster": "rayclusters", "RayJob": "rayjobs", "RayService": "rayservices", "RayCronJob": "raycronjobs"}
# The conf/ files whose ${oc.env:RAYAPP_*} variables a pod needs (alerting reads files, not env).
ENV_CONF = ("config.yaml", "storage/minio.yaml", "serving/default.yaml", "sources/live.yaml")
# Keys the example Secret may carry besides conf/'s RAYAPP_* (the MLflow client's S3 settings).
EXTRA_SECRET_KEYS = {"MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
NOT_RESOURCES = {"kustomization.yaml", "secret.example.yaml"}  # checked for basic structure only

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are ~75k lines


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(path.read_text(), Loader=_LOADER) if d is not None]


def _one(name: str) -> dict[str, Any]:
    (doc,) = _docs(K8S / name)
    return doc


def _manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name not in NOT_RESOURCES)


# ---- CRD schemas -------------------------------------------------------------------------------
def _kubernetes_schema(node: Any) -> Any:
    """A CRD's structural schema as plain JSON Schema: `x-kubernetes-int-or-string` fields accept
    both (their `type` goes; the `anyOf` stays), and an object with `properties` but no
    `additionalProperties` rejects other keys. kubectl's default (strict) field validation rejects
    unknown fields too, where a plain JSON Schema check would let a misspelled field through.
    `x-kubernetes-validations` (CEL rules) are not evaluated."""
    if isinstance(node, list):
        return [_kubernetes_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _kubernetes_schema(v) for k, v in node.items()}
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
    open_ended = out.get("x-kubernetes-preserve-unknown-fields") or out.get("x-kubernetes-embedded-resource")
    if "properties" in out and "additionalProperties" not in out and not open_ended:
        out["additionalProperties"] = False
    return out


@functools.cache
def _crd_schema(kind: str, version: str) -> dict[str, Any]:
    if not CRDS.is_dir():
        pytest.skip(f"KubeRay CRD schemas not found at {CRDS} (../shared/k8s/crds: absent outside this environment)")
    path = CRDS / f"ray.io_{PLURALS[kind]}.yaml"
    assert path.is_file(), f"no CRD file for kind {kind}: {path}"
    (crd,) = _docs(path)
    assert crd["spec"]["names"]["kind"] == kind
    versions = {v["name"]: v for v in crd["spec"]["versions"]}
    assert version in versions, f"{kind}: the CRD has versions {sorted(versions)}, not {version}"
    return _kubernetes_schema(versions[version]["schema"]["openAPIV3Schema"])


def _validate(instance: Any, schema: dict[str, Any], what: str) -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is needed to validate against the CRDs")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, f"{what}:\n" + "\n".join(
        f"  {'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message[:300]}" for e in errors
    )


def _pod_template_schema() -> dict[str, Any]:
    """Kubernetes' PodTemplateSpec, as the RayCluster CRD embeds it (for the Deployment)."""
    return _crd_schema("RayCluster", "v1")["properties"]["spec"]["properties"]["headGroupSpec"]["properties"][
        "template"
    ]


def _pod_templates(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, pod template) of every pod a manifest makes (Ray head and worker groups, or a Deployment)."""
    spec = doc["spec"]
    if doc["kind"] == "Deployment":
        return [("spec.template", spec["template"])]
    key = {"RayService": "rayClusterConfig", "RayJob": "rayClusterSpec", "RayCluster": None}[doc["kind"]]
    cluster = spec[key] if key else spec
    out = [(f"{key}.headGroupSpec.template", cluster["headGroupSpec"]["template"])]
    for g in cluster.get("workerGroupSpecs", []):
        out.append((f"{key}.workerGroupSpecs[{g['groupName']}].template", g["template"]))
    return out


@pytest.mark.parametrize("path", _manifests(), ids=lambda p: p.name)
def test_manifest_validates_against_its_schema(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path.name} is empty"
    for doc in docs:
        what = f"{path.name}: {doc.get('kind')} {doc.get('metadata', {}).get('name') or doc.get('metadata')}"
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind")
        assert doc.get("metadata", {}).get("name") or doc.get("metadata", {}).get("generateName"), what
        if api_version.startswith("ray.io/"):
            assert api_version == "ray.io/v1", f"{what}: use ray.io/v1 (v1alpha1 is deprecated)"
            _validate(doc, _crd_schema(kind, "v1"), what)
        elif (api_version, kind) == ("apps/v1", "Deployment"):
            spec = doc["spec"]
            assert set(spec) <= {"replicas", "strategy", "selector", "template", "revisionHistoryLimit"}, what
            labels = spec["template"]["metadata"]["labels"]
            assert spec["selector"]["matchLabels"].items() <= labels.items(), f"{what}: selector must match the pods"
            _validate(spec["template"], _pod_template_schema(), f"{what} (pod template)")
        else:
            pytest.fail(f"{what}: no schema known for {api_version} {kind}")


@pytest.mark.parametrize("path", _manifests(), ids=lambda p: p.name)
def test_every_pod_runs_the_image_with_the_secret(path: Path) -> None:
    for doc in _docs(path):
        templates = _pod_templates(doc)
        assert templates
        for where, template in templates:
            pod = template["spec"]
            sc = pod.get("securityContext", {})
            assert sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 1000, f"{path.name} {where}: non-root"
            assert pod["containers"], f"{path.name} {where}: no containers"
            for c in pod["containers"]:
                at = f"{path.name} {where} container {c.get('name')}"
                assert c.get("name") and c.get("image"), f"{at}: name and image are required"
                assert c["image"].split("@")[0].rsplit(":", 1)[0] == IMAGE, f"{at}: image {c['image']}"
                refs = [e["secretRef"]["name"] for e in c.get("envFrom", []) if "secretRef" in e]
                assert refs == [SECRET_NAME], f"{at}: envFrom must load the Secret {SECRET_NAME}"
                for part in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(c.get("resources", {}).get(part, {})), f"{at}: resources.{part}"
                env = {e["name"]: e for e in c.get("env", [])}
                leaked = [n for n, e in env.items() if "value" in e and re.search("KEY|SECRET|PASSWORD|TOKEN", n)]
                assert not leaked, f"{at}: secrets belong in the Secret, not in env: {leaked}"


# ---- the RayService ----------------------------------------------------------------------------
def _render() -> Any:
    sys.path.insert(0, str(K8S))
    try:
        import render  # deploy/k8s/render.py
    finally:
        sys.path.remove(str(K8S))
    return render


def test_rayservice_cluster_shape() -> None:
    doc = _one("rayservice.yaml")
    assert doc["kind"] == "RayService" and doc["metadata"]["name"] == "rayapp"
    cluster = doc["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]["rayStartParams"]
    assert head["dashboard-host"] == "0.0.0.0" and head["num-cpus"] == "0"
    (workers,) = cluster["workerGroupSpecs"]
    assert (workers["replicas"], workers["minReplicas"], workers["maxReplicas"]) == (2, 1, 4)
    ports = {p["containerPort"] for p in cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {6379, 8265, 10001, 8000} <= ports
    ray_version = re.search(r"^ARG RAY_VERSION=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert ray_version and cluster["rayVersion"] == ray_version.group(1), "rayVersion = the image's Ray"


def test_serve_config_v2_is_serve_config_yaml() -> None:
    render = _render()
    embedded = yaml.safe_load(_one("rayservice.yaml")["spec"]["serveConfigV2"])
    source = yaml.safe_load(SERVE_CONFIG.read_text())
    assert embedded == render.serve_document(SERVE_CONFIG) == source
    # serve_config.yaml names no host: every Ray container makes Serve listen on all interfaces
    assert "host" not in source.get("http_options", {})
    spec = _one("rayservice.yaml")["spec"]["rayClusterConfig"]
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for g in groups:
        for container in g["template"]["spec"]["containers"]:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            assert env.get("RAY_SERVE_DEFAULT_HTTP_HOST") == "0.0.0.0", container["name"]


def test_render_check_passes() -> None:
    proc = subprocess.run(
        [sys.executable, str(K8S / "render.py"), "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"run `python deploy/k8s/render.py`:\n{proc.stdout}\n{proc.stderr}"


def test_render_check_fails_on_drift_and_rewrite_fixes_it(tmp_path: Path) -> None:
    serve_config = tmp_path / "serve_config.yaml"
    data = yaml.safe_load(SERVE_CONFIG.read_text())
    data["applications"][0]["deployments"][0]["num_replicas"] = 3
    serve_config.write_text(yaml.safe_dump(data, sort_keys=False))
    manifest = tmp_path / "rayservice.yaml"
    original = (K8S / "rayservice.yaml").read_text()
    manifest.write_text(original)
    args = [sys.executable, str(K8S / "render.py"), "--serve-config", str(serve_config), "--manifest", str(manifest)]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*args, *extra], capture_output=True, text=True, timeout=60)

    assert run("--check").returncode == 1
    assert manifest.read_text() == original, "--check writes nothing"
    assert run().returncode == 0
    assert run("--check").returncode == 0
    new = yaml.safe_load(manifest.read_text())
    assert yaml.safe_load(new["spec"]["serveConfigV2"])["applications"][0]["deployments"][0]["num_replicas"] == 3
    # Only the generated block changed: the hand-written rest (and its comments) stays.
    assert new["spec"]["rayClusterConfig"] == yaml.safe_load(original)["spec"]["rayClusterConfig"]
    assert manifest.read_text().split("# BEGIN serveConfigV2")[0] == original.split("# BEGIN serveConfigV2")[0]


# ---- training and the scheduler ----------------------------------------------------------------
def test_rayjob_train() -> None:
    doc = _one("rayjob-train.yaml")
    spec = doc["spec"]
    words = shlex.split(spec["entrypoint"])
    assert words[0] == "python" and Path(words[1]).parts[-2:] == ("jobs", "train.py"), spec["entrypoint"]
    assert (ROOT / "jobs" / "train.py").is_file()
    assert "tune.num_samples=32" in words[2:]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    assert "clusterSelector" not in spec and "rayClusterSpec" in spec


def test_scheduler_deployment() -> None:
    doc = _one("scheduler.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("apps/v1", "Deployment")
    spec = doc["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate", "never two schedulers"
    (container,) = spec["template"]["spec"]["containers"]
    command = container["command"] + container.get("args", [])
    assert command[:2] == ["rayapp", "run"] and "--detach" not in command, "the pod is the scheduler's lifetime"
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    service = _one("rayservice.yaml")["metadata"]["name"]
    assert env["RAY_ADDRESS"] == f"ray://{service}-head-svc:10001"
    assert "storage=minio" in command


def test_overrides_in_the_manifests_are_valid_settings() -> None:
    from rayapp.config import load_settings

    (container,) = _one("scheduler.yaml")["spec"]["template"]["spec"]["containers"]
    s = load_settings([w for w in container["command"][2:] if "=" in w])
    assert s.storage.backend == "minio" and s.serving.host == "0.0.0.0"
    serve = yaml.safe_load(SERVE_CONFIG.read_text())
    predictor = next(d for d in serve["applications"][0]["deployments"] if d["name"] == "Predictor")
    assert s.serving.predictor_replicas == predictor["num_replicas"], "the scheduler's Serve deploy = serve_config's"
    words = shlex.split(_one("rayjob-train.yaml")["spec"]["entrypoint"])
    assert load_settings([w for w in words[2:] if "=" in w]).tune.num_samples == 32


# ---- Secret and kustomization -----------------------------------------------------------------
def _needed_env() -> set[str]:
    """The RAYAPP_* variables conf/ reads from the environment, less those the image sets."""
    names: set[str] = set()
    for rel in ENV_CONF:
        names |= set(re.findall(r"\$\{oc\.env:(RAYAPP_[A-Z0-9_]+)", (ROOT / "conf" / rel).read_text()))
    return names - _dockerfile_env().keys()


def test_secret_example_is_placeholders_only() -> None:
    doc = _one("secret.example.yaml")
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == ("v1", "Secret", SECRET_NAME)
    assert doc.get("type", "Opaque") == "Opaque"
    assert "data" not in doc, "stringData only: base64 data would hide what the values are"
    values = doc["stringData"]
    real = {k: v for k, v in values.items() if "CHANGE-ME" not in str(v) and "example" not in str(v)}
    assert not real, f"not a placeholder: {sorted(real)}"
    missing = _needed_env() - set(values)
    assert not missing, f"variables the pods need, not in the example Secret: {sorted(missing)}"
    known = _needed_env() | EXTRA_SECRET_KEYS
    assert set(values) <= known, f"keys nothing reads: {sorted(set(values) - known)}"
    assert {"RAYAPP_DATABASE_URL", "RAYAPP_REDIS_URL", "RAYAPP_MLFLOW_URI", "RAYAPP_API_KEY"} <= set(values)
    assert {"RAYAPP_S3_ENDPOINT", "RAYAPP_S3_BUCKET", "RAYAPP_S3_ACCESS_KEY", "RAYAPP_S3_SECRET_KEY"} <= set(values)


def test_secret_example_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from rayapp.config import load_settings

    for k, v in _one("secret.example.yaml")["stringData"].items():
        monkeypatch.setenv(k, str(v))
    s = load_settings(["storage=minio"])  # the URL formats pass validation
    assert s.database.url and s.redis.url and s.storage.endpoint and s.serving.api_key


def test_kustomization() -> None:
    doc = _one("kustomization.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("kustomize.config.k8s.io/v1beta1", "Kustomization")
    resources = doc["resources"]
    assert resources and all((K8S / r).is_file() for r in resources), resources
    assert "secret.example.yaml" not in resources, "apply -k must not overwrite the real Secret with placeholders"
    assert {"rayservice.yaml", "scheduler.yaml"} <= set(resources)
    assert {i["name"] for i in doc.get("images", [])} <= {IMAGE}


# ---- Dockerfile (text only: no image is built here) -------------------------------------------
def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in _instructions():
        if word == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def test_dockerfile_stages_user_and_torch_variant() -> None:
    ins = _instructions()
    froms = [rest for word, rest in ins if word == "FROM"]
    assert len(froms) >= 2, "multi-stage: the dashboard build and the runtime"
    assert any(re.match(r"node:\S+ AS frontend$", f, re.I) for f in froms)
    assert any(w == "COPY" and "--from=frontend" in r and r.endswith("/app/frontend/dist/") for w, r in ins)
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    assert ("ARG", "TORCH_VARIANT=cpu") in ins
    torch = next(i for i, (w, r) in enumerate(ins) if w == "RUN" and "pip install" in r and "torch==" in r)
    assert "https://download.pytorch.org/whl/${TORCH_VARIANT}" in ins[torch][1]
    project = next(i for i, (w, r) in enumerate(ins) if w == "COPY" and "pyproject.toml" in r)
    assert torch < project, "torch (from the variant's index) is installed before the project"
    assert any(w == "RUN" and "pip install" in r for w, r in ins[project:])
    assert not any(w == "RUN" and "gen:api" in r for w, r in ins), "src/api/schema.d.ts is committed"


def test_dockerfile_runtime_files_and_environment() -> None:
    ins = _instructions()
    copies = {r.split()[-1].rstrip("/"): r.split()[:-1] for w, r in ins if w == "COPY"}
    env = _dockerfile_env()
    assert copies.get(env["RAYAPP_CONF_DIR"]) == ["conf/"]
    assert copies.get(env["RAYAPP_DEPLOY_DIR"]) == ["deploy/"]
    assert "/app/jobs" in copies and "/app/serve_config.yaml" in copies
    assert env["RAYAPP_STATE_DIR"] == "/home/rayapp/.rayapp"
    workdirs = [r for w, r in ins if w == "WORKDIR"]
    assert workdirs[-1] == "/app"
    static_dir = yaml.safe_load((ROOT / "conf" / "serving" / "default.yaml").read_text())["static_dir"]
    assert f"{workdirs[-1]}/{static_dir}" in copies, "the dashboard lands where serving.static_dir points"
    exposed = {p for w, r in ins if w == "EXPOSE" for p in r.split()}
    assert {"8000", "8265", "6379"} <= exposed


def test_dockerfile_copies_no_secrets() -> None:
    for word, rest in _instructions():
        if word == "ADD":
            pytest.fail(f"ADD {rest}: use COPY (ADD fetches URLs and unpacks archives)")
        if word == "COPY":
            sources = [s for s in rest.split()[:-1] if not s.startswith("--")]
            for s in sources:
                assert ".." not in Path(s).parts and "shared" not in Path(s).parts, f"COPY {rest}: outside the repo"
                name = Path(s).name.lower()
                assert not name.endswith(".env") and name != ".env" and "secret" not in name, f"COPY {rest}"
        if word in ("ENV", "ARG"):
            for token in shlex.split(rest):
                key = token.partition("=")[0]
                if re.search("PASSWORD|SECRET|API_KEY|TOKEN|ACCESS_KEY", key):
                    pytest.fail(f"{word} {key}: credentials come from the environment at run time, never the image")


def test_dockerignore() -> None:
    patterns = {
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    }
    for needed in (".git", ".rayapp", "tests", "reports", ".venv", "*.egg-info", "frontend/node_modules"):
        assert needed in patterns, f".dockerignore should exclude {needed}"
    assert "frontend/dist" in patterns and "**/__pycache__" in patterns and "**/*.env" in patterns
    assert "deploy/k8s" in patterns, "manifests and the example Secret stay out of the image"


def test_serving_workers_are_ready_only_while_serving_live_data() -> None:
    spec = _one("rayservice.yaml")["spec"]["rayClusterConfig"]
    for group in spec["workerGroupSpecs"]:
        (container,) = group["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8000}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": 8000}
