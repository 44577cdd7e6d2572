# syntax=docker/dockerfile:1
# One image target per service, each built from uv.lock with only its own package and common:
#   docker build --target api -t tracking-api .
#   docker build --target forwarder -t tracking-forwarder .
#   docker build --target collector -t tracking-collector .   (local collector, dev only)
#   docker build --target produce -t tracking-produce .       (the internal producers' CLI)
# The forwarder's image carries no FastAPI; no image carries dev tools, tests or secrets.

# ---------------------------------------------------------------------------------------------
# builder: uv from PyPI, and the workspace manifests (the dependency layer's cache key).
FROM python:3.11-slim AS builder
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY common/pyproject.toml common/
COPY producer/pyproject.toml producer/
COPY api_service/pyproject.toml api_service/
COPY forwarder_service/pyproject.toml forwarder_service/
COPY local_collector/pyproject.toml local_collector/

# ---------------------------------------------------------------------------------------------
# Per service: third-party dependencies first (cached until uv.lock changes), then the sources,
# installed non-editable so the venv alone is enough at run time.
FROM builder AS build-api
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package api-service
COPY common/src common/src
COPY producer/src producer/src
COPY api_service/src api_service/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package api-service

FROM builder AS build-forwarder
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package forwarder-service
COPY common/src common/src
COPY forwarder_service/src forwarder_service/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package forwarder-service

FROM builder AS build-collector
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package local-collector
COPY common/src common/src
COPY local_collector/src local_collector/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package local-collector

FROM builder AS build-produce
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package tracking-producer
COPY common/src common/src
COPY producer/src producer/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package tracking-producer

# ---------------------------------------------------------------------------------------------
# runtime: the slim base, an unprivileged numeric user (so Kubernetes can check runAsNonRoot).
FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
# The services drain on SIGTERM; exec-form ENTRYPOINTs make the service PID 1 so it gets it.
STOPSIGNAL SIGTERM
USER 10001:10001

# ---------------------------------------------------------------------------------------------
FROM runtime AS api
COPY --from=build-api /app/.venv /app/.venv
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ.get('API_PORT', '8080') + '/healthz', timeout=2)"]
ENTRYPOINT ["api-service"]

FROM runtime AS forwarder
COPY --from=build-forwarder /app/.venv /app/.venv
EXPOSE 9465
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ.get('FORWARDER_ADMIN_PORT', '9465') + '/healthz', timeout=2)"]
# `docker run IMAGE replay --dry-run` runs the replay sub-command instead.
ENTRYPOINT ["forwarder-service"]

FROM runtime AS collector
COPY --from=build-collector /app/.venv /app/.venv
ENV COLLECTOR_HOST=0.0.0.0 \
    COLLECTOR_PORT=9090
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ.get('COLLECTOR_PORT', '9090') + '/healthz', timeout=2)"]
ENTRYPOINT ["local-collector"]

# A batch job rather than a service (backfills, Kubernetes Jobs): no port, no health check; its
# exit code says whether every line was produced.
#   docker run --rm -i -e KAFKA_BOOTSTRAP_SERVERS=... tracking-produce - < events.jsonl
FROM runtime AS produce
COPY --from=build-produce /app/.venv /app/.venv
ENTRYPOINT ["tracking-produce"]
