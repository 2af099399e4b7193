# The service's container image: the Procfile's web process on a slim Python 3.11, as a user that is not root.
# NOT BUILT HERE: the machine this repository is developed and tested on has no container daemon; the test
# tests/deploy/test_container.py checks what can be checked without one (docs/deploy.md, "Container image").
#   docker build -t marketing-actions .
#   docker run --env-file .env -p 127.0.0.1:8000:8000 marketing-actions       (or: docker compose up, compose.yaml)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    BIND_ADDRESS=0.0.0.0

WORKDIR /app
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin app

# the dependencies first (a layer that changes only with requirements.txt), in a virtualenv at .venv as in a
# checkout, so that every command the docs give (.venv/bin/python -m ...) works in the container too
COPY requirements.txt ./
RUN python -m venv /app/.venv && /app/.venv/bin/pip install -r requirements.txt
ENV PATH=/app/.venv/bin:$PATH

COPY . .
# var/: the SQLite ledger of a single instance and the sandbox's state; the only place the service writes
RUN mkdir -p /app/var && chown app:app /app/var

USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'], timeout=4)"]
# the Procfile's web line; `exec` makes gunicorn PID 1's successor, so `docker stop` (SIGTERM) stops it gracefully
CMD ["/bin/sh", "-c", "exec python -m service.boot gunicorn service.asgi:app -c gunicorn.conf.py -k service.workers.BalancedUvicornWorker --bind ${BIND_ADDRESS:-0.0.0.0}:$PORT"]
