# syntax=docker/dockerfile:1
# The rayapp image: every Ray node KubeRay runs (RayService head and workers, a RayJob's cluster
# and its submitter) and the scheduler driver run this one image, so Ray, Python and rayapp match
# everywhere (Ray Client and Ray clusters require it).
#
#   docker build -t rayapp:cpu .
#   docker build --build-arg TORCH_VARIANT=cu124 -t rayapp:cuda .
#   docker build --build-arg GIT_COMMIT="$(git rev-parse HEAD)" -t rayapp:cpu .   # recorded in MLflow runs
#
# Images cannot be built or run where this repository's tests run (no container engine there):
# tests/deploy/test_k8s_manifests.py checks this file as text only. docs/DEPLOY.md has the rest.
# Nothing secret goes into the image: URLs and credentials come from the environment at run time
# (the Secret `rayapp-env` on Kubernetes, deploy/k8s/secret.example.yaml).

# ---- stage 1: the React dashboard (frontend/) ------------------------------------------------
FROM node:20-slim AS frontend
WORKDIR /build/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
# The API types (src/api/schema.d.ts, src/api/openapi.json) are committed: `npm run gen:api` needs
# the Python app and is not run here. `vite build` alone, as frontend/ci.sh builds.
RUN npx vite build

# ---- stage 2: the runtime --------------------------------------------------------------------
# python:3.11-slim plus pip, not rayproject/ray: that image brings its own Ray build, Python and
# conda environment, and no torch; here every version is this file's and pyproject.toml's choice
# (RAY_VERSION and TORCH_VERSION are pinned below and held by a constraints file while the
# project's dependencies install), and the image has nothing rayapp does not use.
FROM python:3.11-slim AS runtime

# cpu, or the PyTorch wheel index of a CUDA build (cu124, cu126, cu128, ...): the tag must be one
# https://download.pytorch.org/whl/ publishes torch==TORCH_VERSION for.
ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ARG RAY_VERSION=2.60.0
ARG GIT_COMMIT=unknown

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# bash and wget: KubeRay's default probes run `bash -c "wget ... | grep success"` in Ray pods.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash wget ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# torch first, from the PyTorch index of the chosen variant (PyPI's default torch wheel is the
# large CUDA one); the project's `torch>=...` requirement is then already met.
RUN case "$TORCH_VARIANT" in cpu|cu[0-9]*) ;; *) echo "TORCH_VARIANT must be cpu or cuNNN, got $TORCH_VARIANT" >&2; exit 1;; esac \
 && pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"

# Ray, pinned: the cluster, the autoscaler sidecar and every driver use this exact version.
RUN printf 'torch==%s\nray==%s\n' "$TORCH_VERSION" "$RAY_VERSION" > /etc/pip-constraints.txt \
 && pip install -c /etc/pip-constraints.txt "ray[data,train,tune,serve]==${RAY_VERSION}"

# The project, non-editable, built from a copy that is removed afterwards (so no rayapp/ source
# tree sits in the working directory to shadow the installed package). The [gpu] extra with CUDA.
COPY pyproject.toml README.md /tmp/src/
COPY rayapp/ /tmp/src/rayapp/
RUN if [ "$TORCH_VARIANT" = cpu ]; then spec=/tmp/src; else spec="/tmp/src[gpu]"; fi \
 && pip install -c /etc/pip-constraints.txt "$spec" \
 && rm -rf /tmp/src

# A non-root user (uid 1000, the pods' runAsUser) and its state dir (embedded-service data, the
# alert webhook token, Tune results; on Kubernetes the stores are external, see the Secret).
RUN groupadd --gid 1000 rayapp \
 && useradd --uid 1000 --gid 1000 --create-home --home-dir /home/rayapp --shell /bin/bash rayapp \
 && mkdir -p /home/rayapp/.rayapp /home/rayapp/.cache \
 && chown -R 1000:1000 /home/rayapp

# Runtime files beside the package: rayapp finds conf/ through RAYAPP_CONF_DIR (else it looks
# beside the installed package, which has none) and deploy/ (alerting: Prometheus/Alertmanager/
# Grafana files) through RAYAPP_DEPLOY_DIR. serving.static_dir is frontend/dist, resolved against
# the parent of the conf dir: /app/frontend/dist.
WORKDIR /app
COPY conf/ /app/conf/
COPY deploy/ /app/deploy/
COPY jobs/ /app/jobs/
COPY serve_config.yaml /app/serve_config.yaml
COPY --from=frontend /build/frontend/dist/ /app/frontend/dist/

ENV RAYAPP_CONF_DIR=/app/conf \
    RAYAPP_DEPLOY_DIR=/app/deploy \
    RAYAPP_STATE_DIR=/home/rayapp/.rayapp \
    RAYAPP_GIT_COMMIT=${GIT_COMMIT} \
    HOME=/home/rayapp \
    HF_HOME=/home/rayapp/.cache/huggingface

USER rayapp

# 8000 Serve HTTP (API + dashboard), 8265 Ray dashboard and Jobs API, 6379 Ray GCS, 10001 Ray Client.
EXPOSE 8000 8265 6379 10001

# No HEALTHCHECK: the image runs as a Ray head, a Ray worker or a driver, each with its own health
# (KubeRay probes the Ray pods). No ENTRYPOINT: KubeRay sets the container command (`ray start ...`).
CMD ["rayapp", "--help"]
