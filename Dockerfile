# Porfin production image: one image for the web process and every worker cluster.
#   docker build -t porfin .
#   docker compose up        (see compose.yaml: web, four worker clusters, PostgreSQL, Redis, MinIO)

# --- build: wheels for the runtime requirements only (no test tools in production) ----------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
# requirements.lock: every runtime package pinned with its hashes (pip-compile --generate-hashes);
# pip refuses a download whose hash differs.
COPY requirements.lock .
RUN pip wheel --require-hashes --no-deps --wheel-dir /wheels -r requirements.lock

# --- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings
RUN apt-get update && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system porfin && useradd --system --gid porfin --home /app porfin
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-index --no-deps /wheels/* && rm -rf /wheels
COPY --chown=porfin:porfin . .
# Static files (hashed names, as production serves them) and translations at build time; the
# settings need these values to load, none of them is used or kept.
RUN export DEBUG=0 SECRET_KEY=build-only-secret-key-never-used-at-run-time-0123456789 \
      FIELD_ENCRYPTION_KEY=YnVpbGQtb25seS1rZXktbm90LXVzZWQtYXQtcnVuISE= EMAIL_URL=consolemail:// \
    && python manage.py compilemessages -v 0 \
    && python manage.py collectstatic --noinput -v 0
USER porfin
EXPOSE 8000
# The web process: WEB_CONCURRENCY uvicorn processes (one per core; uvicorn reads it as
# --workers), each on a listening socket of its own (config/serve.py), each running
# HTTP_CONCURRENCY requests at once. Worker clusters override the command
# (see Procfile / compose.yaml).
ENV WEB_CONCURRENCY=2
CMD ["python", "-m", "config.serve", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--ws-per-message-deflate", "false", "--proxy-headers", "--forwarded-allow-ips", "*"]
