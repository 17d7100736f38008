# syntax=docker/dockerfile:1.4
# An image of your own app served by the gateway: your legacy FastAPI app and its async
# twins, with no composition module. Build it from your project's directory, with the
# gateway's checkout as a second build context named `gateway`:
#
#   docker build -f /path/to/gateway/deploy/own-app.Dockerfile \
#                --build-context gateway=/path/to/gateway -t myapp .
#   docker run -p 8000:8000 -e GATEWAY_DATABASE_URL=postgresql://... myapp
#
# The project layout it expects (deploy/own-app/ is a sample of it):
#   requirements.txt     your app's pinned dependencies (pip freeze)
#   mypkg/main.py        app = FastAPI(...): the legacy app, unchanged
#   mypkg/migrated.py    router = APIRouter(): the async def twins of its routes
# Another package name: change `mypkg` in the COPY and CMD lines below.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements.txt ./
RUN pip install -r requirements.txt
# Only the gateway package from the checkout (not its example app), installed under your
# pins as constraints: pip refuses rather than upgrade your FastAPI or SQLAlchemy.
# DL3022 ignored: `gateway` is the named build context from --build-context, which
# hadolint cannot know of (it expects a stage alias).
# hadolint ignore=DL3022
COPY --from=gateway pyproject.toml README.md ./gateway-src/
# hadolint ignore=DL3022
COPY --from=gateway gateway ./gateway-src/gateway
RUN pip install -c requirements.txt ./gateway-src

FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Owned by root and read-only for the app user: the process cannot rewrite its own code.
COPY mypkg ./mypkg
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_WORKERS=2 \
    GATEWAY_LOG_JSON=true
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; prefix = os.environ.get('GATEWAY_ADMIN_PREFIX', '/_gateway'); sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000' + prefix + '/live', timeout=2).status == 200 else 1)"]
STOPSIGNAL SIGTERM
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000", "--app-dir", "/app", "--legacy", "mypkg.main:app", "--async", "mypkg.migrated:router"]
