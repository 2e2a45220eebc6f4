# syntax=docker/dockerfile:1
# One image for every EdgePrune deployable:
#   docker run edgeprune                          -> the API (edgeprune api)
#   docker run edgeprune edgeprune worker ...     -> a Celery worker
# GPU workers: build with the CUDA wheel index of torch, e.g.
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first and on its own, from the chosen index: the extras below pin torch==2.13.0,
# which the installed build (2.13.0+cpu or +cuXXX) already satisfies, so pip keeps it.
RUN pip install --upgrade pip \
 && pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY edgeprune ./edgeprune
COPY pruning ./pruning
COPY infra ./infra
COPY service ./service
COPY worker ./worker
COPY edge_client ./edge_client
RUN pip install ".[worker,service,edge]"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EDGEPRUNE_DATA_DIR=/data \
    EDGEPRUNE_ARTIFACTS_URL=/artifacts
RUN groupadd --gid 10001 edgeprune \
 && useradd --uid 10001 --gid edgeprune --create-home --shell /usr/sbin/nologin edgeprune \
 && mkdir -p /data /artifacts \
 && chown edgeprune:edgeprune /data /artifacts
COPY --from=build /opt/venv /opt/venv
USER edgeprune
WORKDIR /home/edgeprune
# Named volumes mounted here start out owned by the edgeprune user (copied from the image).
VOLUME ["/data", "/artifacts"]
EXPOSE 8000
# No HEALTHCHECK here: the image also runs workers, which serve no HTTP. The API's check
# (GET /healthz) is in docker-compose.yml.
CMD ["edgeprune", "api", "--host", "0.0.0.0", "--port", "8000"]
