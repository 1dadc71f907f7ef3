# syntax=docker/dockerfile:1.10
#
# One image holds every program of ./cmd (api, worker, careeropsctl, fakeopenai, ...) in
# /usr/local/bin.
# Why one image: the migration hook (careeropsctl migrate up) must run the very build whose
# api and worker it migrates for, one tag pins everything a release runs, and the dev loops
# (skaffold, Tilt, compose) build once. The programs share almost all of their code, so the
# image is barely bigger than a single-program one. Each container picks its program with
# `command:` (the chart, compose); the default is the api.
#
#   docker build -t careerops:dev .
#   docker build --build-arg VERSION=1.2.3 --build-arg REVISION=$(git rev-parse HEAD) -t careerops:1.2.3 .

ARG GO_VERSION=1.26.8

# --- build: static binaries, module and build caches as cache mounts ---------------------
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY cmd/ cmd/
COPY internal/ internal/
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/...

# --- debug: the same binaries on distroless's debug-nonroot, which adds busybox (/busybox/sh,
# /busybox/wget) for docker-compose.yml's healthchecks and for poking around. Not for clusters:
# Kubernetes probes need no tools in the image.
FROM gcr.io/distroless/static-debian12:debug-nonroot AS debug
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
CMD ["/usr/local/bin/api"]

# --- final (the default target): distroless static, non-root -------------------------------
FROM gcr.io/distroless/static-debian12:nonroot AS final
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="careerops-jobs" \
      org.opencontainers.image.description="CareerOps cover-letter jobs: api, worker, careeropsctl, fakeopenai" \
      org.opencontainers.image.source="https://github.com/careerops/jobs" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="UNLICENSED" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
COPY --from=build /out/ /usr/local/bin/
# 65532 is distroless's "nonroot" user; numeric so Kubernetes can verify runAsNonRoot.
USER 65532:65532
EXPOSE 8080 9090 8090
CMD ["/usr/local/bin/api"]
