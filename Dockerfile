# hwbench image (for Apptainer without Docker see hwbench.def; with a Docker daemon:
# `apptainer build hwbench.sif docker-daemon://hwbench:0.1.0`). Installs the pinned
# dependencies of requirements/lock-cuda.txt (hash-checked), then this checkout.
# PyPI's torch wheels bundle the CUDA runtime, so the image needs no CUDA base; the
# node's driver comes in through the container runtime (nvidia-container-toolkit,
# `apptainer --nv`). Build from the checkout root:
#   docker build -t hwbench:0.1.0 .
FROM python:3.11-slim-bookworm

# bsdtar reads MADBase's RAR archives (docs/datasets.md)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libarchive-tools \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/hwbench
COPY requirements/lock-cuda.txt requirements/lock-cuda.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/lock-cuda.txt
COPY . .
RUN pip install --no-cache-dir --no-deps -e .

ENV PYTHONUNBUFFERED=1
