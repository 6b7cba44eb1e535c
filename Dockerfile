# kiln's own images. Targets:
#   operator  the controller (static binary, non-root, distroless)
#   builder   what build Pods run: the same binary plus buildah
# docker build --target operator -t kiln .  /  buildah bud --target builder -t kiln-builder .

FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release --bin kiln \
    && install -m 0755 target/release/kiln /kiln

FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /kiln /usr/local/bin/kiln
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kiln"]
CMD ["controller"]

FROM quay.io/buildah/stable:latest AS builder
COPY --from=build /kiln /usr/local/bin/kiln
# chroot isolation works inside an unprivileged user namespace and in privileged Pods alike.
ENV BUILDAH_ISOLATION=chroot STORAGE_DRIVER=overlay
ENTRYPOINT ["/usr/local/bin/kiln"]
