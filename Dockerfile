# eufy-bridge container image: build the project into a virtual environment, then copy only
# that environment into a slim runtime image that runs as an unprivileged user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bridge ./bridge
COPY schemas ./schemas
COPY conformance ./conformance
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin bridge \
    && mkdir -p /data && chown bridge:bridge /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
USER bridge
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"]
# Inside the container the bridge listens on every address; configuration comes from
# EUFY_BRIDGE_* variables or a mounted file named by EUFY_BRIDGE_CONFIG.
CMD ["eufy-bridge", "--host", "0.0.0.0", "--data-dir", "/data", "--log-format", "json"]
