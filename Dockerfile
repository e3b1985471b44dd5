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
# /healthz over http, or over https when server.tls_cert is set (the certificate is the
# bridge's own, so it is not verified here).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import ssl, sys, urllib.request as u\nc = ssl.create_default_context()\nc.check_hostname = False\nc.verify_mode = ssl.CERT_NONE\nfor s in ('http', 'https'):\n    try:\n        sys.exit(u.urlopen(s + '://127.0.0.1:3000/healthz', timeout=2, context=c).status != 200)\n    except OSError:\n        pass\nsys.exit(1)"]
# Inside the container the bridge listens on every address; configuration comes from
# EUFY_BRIDGE_* variables or a mounted file named by EUFY_BRIDGE_CONFIG. Give it a client token
# (EUFY_BRIDGE_SERVER__AUTH_TOKEN): it warns at start without one.
CMD ["eufy-bridge", "--host", "0.0.0.0", "--data-dir", "/data", "--log-format", "json"]
