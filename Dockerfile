# One image for all six fedstream services (and the CLI): `docker run fedstream service <name>`.
# docker-compose.yml builds it once and runs each service from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FEDSTREAM_STATE_DIR=/var/lib/fedstream

WORKDIR /app

# CPU-only torch first, in its own layer: pyproject pins torch==2.13.0, and the default PyPI wheel would
# pull several GB of CUDA libraries that the services never use. Code edits do not invalidate this layer.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# README* matches nothing harmlessly when the file is absent (pyproject.toml always matches).
COPY pyproject.toml README* ./
COPY schemas ./schemas
COPY libs ./libs
COPY services ./services
COPY infra ./infra
COPY examples ./examples

# Editable on purpose: services apply the SQL migrations in infra/migrations at start, and
# fedstream.storage.postgres finds them relative to the source tree, which a wheel install would lose.
RUN pip install -e .

# Non-root. /data/blobs is created here, owned by the service user, because a fresh named volume
# mounted there copies this ownership; otherwise the blob store volume would be root-owned and read-only.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin fedstream \
    && mkdir -p /data/blobs "$FEDSTREAM_STATE_DIR" \
    && chown fedstream /data/blobs "$FEDSTREAM_STATE_DIR"
USER fedstream

ENTRYPOINT ["fedstream"]
CMD ["--help"]
