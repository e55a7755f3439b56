# workflowstate server image: serves against WORKFLOWSTATE_DATABASE_URL (required; no embedded database here).
#   docker build -t workflowstate .
#   docker run -p 50051:50051 -e WORKFLOWSTATE_DATABASE_URL=postgresql://user:pass@db:5432/app workflowstate

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
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'workflowstate[server]' \
    && rm -rf /wheels \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin workflowstate
USER 10001
ENV WORKFLOWSTATE_LISTEN=0.0.0.0:50051 \
    WORKFLOWSTATE_METRICS_LISTEN=0.0.0.0:9464 \
    WORKFLOWSTATE_NO_EMBEDDED=1 \
    PYTHONUNBUFFERED=1
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; ch = grpc.insecure_channel('127.0.0.1:50051'); sys.exit(0 if g.HealthStub(ch).Check(h.HealthCheckRequest(), timeout=2).status == h.HealthCheckResponse.SERVING else 1)"]
ENTRYPOINT ["workflowstate", "serve"]
