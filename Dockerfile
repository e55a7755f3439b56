# workflowstate server image: serves against WORKFLOWSTATE_DATABASE_URL (required; no embedded database here).
#   docker build -t workflowstate .
#   docker run -p 50051:50051 -p 8080:8080 -e WORKFLOWSTATE_DATABASE_URL=postgresql://user:pass@db:5432/app workflowstate
# gRPC on 50051, the web dashboard on 8080, Prometheus metrics on 9464, all on 0.0.0.0.
#
# The dashboard: in a container, loopback is the container's own, so it listens on 0.0.0.0 like the
# gRPC port. Without --auth-tokens the gRPC port already lets whoever reaches it cancel and delete
# every run, so the image lets the dashboard be as open as the API (WORKFLOWSTATE_HTTP_ALLOW_
# UNAUTHENTICATED_NETWORK) rather than refuse to start; the server logs that warning at every start.
# Beyond a private network, mount a tokens file and set WORKFLOWSTATE_AUTH_TOKENS=/path/to/it: then
# the API and the dashboard both ask for a token (the dashboard with its login page), and the flag
# has nothing left to allow. Or keep the dashboard inside: -e WORKFLOWSTATE_HTTP_LISTEN=off.
# tests/packaging/test_python_packages.py runs the installed wheel with this file's ENV, ENTRYPOINT and HEALTHCHECK.

# Build stage: wheels of the project and of everything the server needs, at the versions of the lock.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
COPY client ./client
COPY server ./server
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt '.[server]'

# Run stage: only the installed wheels, run as an unprivileged user.
FROM python:3.12-slim
# The project's version (pyproject.toml's; a test keeps them equal).
LABEL org.opencontainers.image.title="workflowstate" \
      org.opencontainers.image.version="0.1.0"
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'workflowstate[server]' \
    && rm -rf /wheels \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin workflowstate
USER 10001
ENV WORKFLOWSTATE_LISTEN=0.0.0.0:50051 \
    WORKFLOWSTATE_METRICS_LISTEN=0.0.0.0:9464 \
    WORKFLOWSTATE_HTTP_LISTEN=0.0.0.0:8080 \
    WORKFLOWSTATE_HTTP_ALLOW_UNAUTHENTICATED_NETWORK=1 \
    WORKFLOWSTATE_NO_EMBEDDED=1 \
    PYTHONUNBUFFERED=1
EXPOSE 50051 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; ch = grpc.insecure_channel('127.0.0.1:50051'); sys.exit(0 if g.HealthStub(ch).Check(h.HealthCheckRequest(), timeout=2).status == h.HealthCheckResponse.SERVING else 1)"]
ENTRYPOINT ["workflowstate", "serve"]
