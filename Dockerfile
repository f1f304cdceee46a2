# Image of the Open ELMS progress bridge: one image, three processes.
#   docker run IMAGE                    web (python -m bridge serve)
#   docker run IMAGE worker             worker
#   docker run IMAGE db upgrade         migrations, once per release
# Settings are BRIDGE_* environment variables; see docs/operations.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid/gid so volume ownership and Kubernetes runAsUser agree.
RUN groupadd --system --gid 10001 bridge \
    && useradd --system --uid 10001 --gid bridge --home-dir /app \
       --shell /usr/sbin/nologin bridge

WORKDIR /app

# Requirements first: the layer is reused until they change.
COPY requirements.txt ./
RUN pip install -r requirements.txt

COPY bridge ./bridge
COPY deploy ./deploy

# var/ holds the default SQLite file; only the bridge user may write there.
RUN mkdir -p /app/var && chown bridge:bridge /app/var

USER bridge

# Listen on every interface inside the container; the port stays 8080.
ENV BRIDGE_HOST=0.0.0.0 \
    BRIDGE_PORT=8080
EXPOSE 8080

# The slim image has no curl, so Python asks /healthz itself.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BRIDGE_PORT', '8080'), timeout=4)"]

ENTRYPOINT ["python", "-m", "bridge"]
CMD ["serve"]
