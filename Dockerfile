# Baton worker and gateway image. docker-compose.yml runs it as `baton worker`
# and `baton gateway`; configuration comes from BATON_ environment variables.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# .dockerignore keeps tests, caches and local state out; pyproject.toml decides
# which packages (and data files) go into the wheel.
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY --from=build /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin baton
USER baton
WORKDIR /home/baton
ENV BATON_GATEWAY_HOST=0.0.0.0 \
    BATON_LOG_FORMAT=json
EXPOSE 8080
CMD ["baton", "gateway"]
