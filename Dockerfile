# Builds the veltrix binary into a small image (used by docker-compose.yml).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/veltrix ./cmd/veltrix && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/veltrix /usr/local/bin/veltrix
# The state dir belongs to the nonroot user (65532); a named volume mounted
# here starts with this ownership.
COPY --from=build --chown=65532:65532 /out/state /var/lib/veltrix
ENTRYPOINT ["/usr/local/bin/veltrix"]
# GET /readyz on the address of VELTRIX_HTTP_LISTEN (a wildcard host as
# 127.0.0.1; default 127.0.0.1:8080): exit 0 when ready, else 1. The image
# has no shell, so the check is the binary itself (exec form). Orchestrators
# with their own probes use /livez for liveness and /readyz for readiness.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["/usr/local/bin/veltrix", "health"]
