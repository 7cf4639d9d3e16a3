# Falsework's image: `docker build -t falsework .` (docs/operations.md, "Production checklist").
# Stage 1 builds the wheel (the same one `make wheel` makes); stage 2 installs it, with the
# otel extra, into a virtual environment and runs as a non-root user. The build steps are
# the scripts in deploy/image/, which tests/deploy/test_image.py runs the same way.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml hatch_build.py README.md ./
COPY src/ src/
COPY examples/templates/ examples/templates/
COPY deploy/image/ deploy/image/
RUN deploy/image/build-wheel.sh /src /dist

FROM python:3.12-slim
# git (fetch:*, publish:*), ssh for git over ssh, the Postgres client for `falsework db backup`
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /dist/ /tmp/dist/
COPY deploy/image/ /tmp/image/
RUN /tmp/image/install.sh /opt/falsework /tmp/dist && rm -rf /tmp/dist /tmp/image
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/falsework --create-home falsework
ENV PATH=/opt/falsework/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FALSEWORK_DATA_DIR=/var/lib/falsework \
    FALSEWORK_HOST=0.0.0.0 \
    FALSEWORK_PORT=7007 \
    FALSEWORK_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/falsework
EXPOSE 7007
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["falsework-healthcheck"]
ENTRYPOINT ["falsework"]
CMD ["serve"]
