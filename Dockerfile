# syntax=docker/dockerfile:1.7
# Every Drift service's image, one template: the build arguments name the service and its port.
#
# Build from the repository root (the context must hold the whole uv workspace), for example:
#   docker build --build-arg SERVICE=gateway --build-arg PORT=8000 \
#     --build-arg PORT_VARIABLE=DRIFT_GATEWAY_PORT -t drift-gateway .
# SERVICE is the folder under services/ (its console script is drift-SERVICE); PORT the port it
# serves health on by default and PORT_VARIABLE the variable that moves it (the Tiltfile's
# SERVICES table and docs/deploy.md list all six).
# Stages: `manifests` keeps only the workspace's pyproject.toml files and uv.lock, so that
# `build` resolves the locked dependencies with uv into /app/.venv in a layer that changes
# only with them; `runtime` is python:3.11-slim with that venv, the sources and a non-root user.

ARG PYTHON_VERSION=3.11
ARG DEBIAN_RELEASE=bookworm
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION}-python${PYTHON_VERSION}-${DEBIAN_RELEASE}-slim AS manifests
WORKDIR /src
COPY . .
# Every workspace member's pyproject.toml (uv needs them all to read the workspace), at its path.
RUN find . -name pyproject.toml -not -path "./.venv/*" -exec install -D -m 0644 {} /manifests/{} \; \
 && install -m 0644 uv.lock /manifests/uv.lock

FROM ghcr.io/astral-sh/uv:${UV_VERSION}-python${PYTHON_VERSION}-${DEBIAN_RELEASE}-slim AS build
ARG SERVICE
# Bytecode is compiled here (the runtime root filesystem is read-only); copy, not hard-link, out
# of the cache mount; never download a Python: use the image's, the same one the runtime has.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app

# 1. Third-party dependencies only, exactly as locked in uv.lock (--frozen: never re-resolved).
COPY --from=manifests /manifests/ ./
RUN --mount=type=cache,target=/root/.cache/uv \
    test -n "${SERVICE}" || { echo "--build-arg SERVICE=<folder under services/> is required" >&2; exit 1; }; \
    uv sync --frozen --no-dev --no-install-workspace --package "drift-${SERVICE}"

# 2. The workspace packages, installed editable from their sources so that Tilt's live_update
#    can sync changed sources into /app and restart the process. The entry point is the
#    service's console script under one name, so that ENTRYPOINT (which expands no variables)
#    is the same for every image. Their bytecode is compiled here (the runtime sets
#    PYTHONDONTWRITEBYTECODE): the worker's Temporal sandbox re-imports the workflow module
#    for every run and would otherwise compile it from source each time.
COPY libs libs
COPY services/${SERVICE}/src services/${SERVICE}/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "drift-${SERVICE}" \
 && ln -s "drift-${SERVICE}" /app/.venv/bin/drift-service \
 && /app/.venv/bin/python -m compileall -q libs services/${SERVICE}/src


FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS runtime
ARG SERVICE
ARG PORT
ARG PORT_VARIABLE
# HEALTH_PORT*: where the health check finds /health/live (PORT_VARIABLE's value, else PORT).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DRIFT_BIND_HOST=0.0.0.0 \
    DRIFT_LOG_FORMAT=json \
    DRIFT_HOME=/tmp/drift \
    HEALTH_PORT=${PORT} \
    HEALTH_PORT_VARIABLE=${PORT_VARIABLE}
RUN groupadd --system --gid 10001 drift \
 && useradd --system --uid 10001 --gid drift --home-dir /app --no-create-home --shell /usr/sbin/nologin drift \
 && install -d -o drift -g drift /app
WORKDIR /app
# The venv stays root-owned (read-only for the service); the sources belong to the service user
# so that `tilt up` can live-update them (production runs with a read-only root filesystem).
COPY --from=build /app/.venv /app/.venv
COPY --from=build --chown=drift:drift /app/libs /app/libs
COPY --from=build --chown=drift:drift /app/services/${SERVICE} /app/services/${SERVICE}
USER 10001:10001
EXPOSE ${PORT}
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get(os.environ['HEALTH_PORT_VARIABLE'], os.environ['HEALTH_PORT']) + '/health/live', timeout=2)"]
ENTRYPOINT ["/app/.venv/bin/drift-service"]
