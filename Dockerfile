# syntax=docker/dockerfile:1
# runai-submit image: `docker build -t runai-submit:0.1.0 .` (deploy/ refers to it as runai-submit).
#
# Two stages: the builder installs the pinned requirements into a virtualenv and byte-compiles the app;
# the runtime stage is a clean slim Python with that virtualenv and the app copied in, no pip cache, no
# compiler, no build files. It runs as an unprivileged numeric user (so Kubernetes' runAsNonRoot can
# check it) and works with a read-only root filesystem (writable /tmp only: see deploy/base).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Requirements first: this layer is rebuilt only when the pins change, not on every code change.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /app
COPY wsgi.py gunicorn.conf.py ./
COPY runai_submit ./runai_submit
# The root filesystem is read-only at run time, so Python cannot write __pycache__ then: compile now.
# unchecked-hash: the .pyc files stay valid whatever timestamps the COPY gives the sources.
RUN python -m compileall -q --invalidation-mode unchecked-hash /app

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="runai-submit" \
      org.opencontainers.image.description="Run:AI-compatible job submission REST API for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 runai-submit \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin runai-submit
# Root owns the code; the service user can read it, not change it.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RUNAI_SUBMIT_PORT=8080
WORKDIR /app
USER 10001:10001
EXPOSE 8080
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
