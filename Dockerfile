# syntax=docker/dockerfile:1
# The gateway as a production image: build a virtualenv in one stage, copy only it into a
# slim runtime stage that runs as an unprivileged user.
#
#   docker build -t gateway .
#   docker run -p 8000:8000 -e GATEWAY_DATABASE_URL=postgresql://... -e GATEWAY_WORKERS=4 gateway

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY gateway ./gateway
COPY legacy_routes ./legacy_routes
COPY async_routes ./async_routes
COPY example ./example
# Runtime dependencies only (no test or bench extras); `example` adds the example app's pgvector.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install -c constraints.txt ".[example]"

FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin gateway \
    && mkdir /app && chown 10001:10001 /app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_WORKERS=2 \
    GATEWAY_LOG_JSON=true
WORKDIR /app
# The example app is not in the package (it installs the gateway alone); it is served from
# /app, the current directory, as from a checkout. Owned by root: read-only for the app.
COPY --from=build /src/legacy_routes ./legacy_routes
COPY --from=build /src/async_routes ./async_routes
COPY --from=build /src/example ./example
# Numeric, so a runtime that checks runAsNonRoot (Kubernetes) can see it is not root
# without reading /etc/passwd from the image.
USER 10001:10001
EXPOSE 8000
# Liveness: the process answers. Readiness (database, flag store) is /_gateway/ready.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; prefix = os.environ.get('GATEWAY_ADMIN_PREFIX', '/_gateway'); sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000' + prefix + '/live', timeout=2).status == 200 else 1)"]
# SIGTERM: stop accepting, let requests in flight finish (up to 30 s), close the pools.
STOPSIGNAL SIGTERM
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
