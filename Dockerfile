# Production image: `gateway serve` as a non-root user, state in the /data volume.
#   docker build -t renchi-gateway .
#   docker run -p 8000:8000 -v gateway-data:/data renchi-gateway
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md hookspecs.py ./
COPY gateway ./gateway
COPY plugins ./plugins
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_DATA_DIR=/data \
    GATEWAY_LOG_FORMAT=json
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin gateway \
    && mkdir -p /data /etc/gateway && chown gateway:gateway /data
# Mount your plugins.toml at /etc/gateway/plugins.toml (secrets come from the environment).
ENV GATEWAY_CONFIG=/etc/gateway/plugins.toml
COPY --chown=root:root plugins.toml /etc/gateway/plugins.toml
USER gateway
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
