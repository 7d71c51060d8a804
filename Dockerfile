# The meshpilot API image (docker-compose.yml builds it as the `api` service).
# CPU only: the API embeds queries with the bundled MiniLM; generation runs on vLLM's GPU.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    MESHPILOT_HOME=/data

WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY prompts prompts
COPY rag rag
COPY copilot copilot
COPY evals evals
COPY serving serving

# torch first and alone, from the CPU index: a resolution from PyPI would pull gigabytes of CUDA.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install -c requirements.lock . \
 && useradd --system --uid 10001 --home-dir /data meshpilot \
 && mkdir -p /data && chown meshpilot /data

USER meshpilot
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"]
CMD ["meshpilot", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
