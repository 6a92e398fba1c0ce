# Builds the veltrix binary into a small image (used by docker-compose.yml).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /out/veltrix ./cmd/veltrix

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/veltrix /usr/local/bin/veltrix
USER nonroot
ENTRYPOINT ["/usr/local/bin/veltrix"]
