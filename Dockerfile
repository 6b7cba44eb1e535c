# kiln's own images. Targets:
#   controller  kiln alone: the stripped binary, exactly the shared libraries it links (taken from
#               the Debian it was built on), CA certificates; user 65532, no shell
#   builder     what build Pods run: the same kiln, buildah and buildah's configuration
#               (images/builder/containers/), chroot isolation
#
# Bases are build arguments, pinned by digest (a reference with both a tag and a digest is
# refused by buildah, so the tag is in the comment): rust:1.98.0-bookworm and
# debian:bookworm-20260918-slim, multi-platform indexes as published by Docker's official images
# (docker-library/repo-info). To build elsewhere (a mirror, newer digests, local bases) pass other
# references; `scripts/make-base-images.sh REGISTRY --kiln` makes local stand-ins for both from
# Debian's package archive. Update a pin with
# `skopeo inspect --raw docker://docker.io/library/debian:bookworm-slim | sha256sum`.
#
#   BUILD_IMAGE   compiles kiln (source builds) and assembles the controller's root filesystem;
#                 needs cargo for source builds, and ldd, strip, libssl3, ca-certificates always
#   DEBIAN_IMAGE  the builder image's base (Debian 12, as kiln links its glibc and OpenSSL 3)
#   KILN_FROM     `source` (default): a release build inside BUILD_IMAGE (fetches crates
#                 from crates.io); `prebuilt`: take the binary at KILN_BINARY in the build context
#   KILN_BINARY   path of a prebuilt kiln in the context (default target/release/kiln; built on
#                 Debian 12 or an older glibc)
#
#   buildah bud --target controller -t kiln .
#   buildah bud --target builder -t kiln-builder .
#   cargo rustc --release --bin kiln -- \
#     -C link-arg=-Wl,-z,pack-relative-relocs -C link-arg=-Wl,--icf=all &&
#     buildah bud --target controller --build-arg KILN_FROM=prebuilt -t kiln .
# rust:1.98.0-bookworm
ARG BUILD_IMAGE=docker.io/library/rust@sha256:82150a52ec202c1b14d7817e14516c392bb7f5cfebd88f1ed531cb37ebd39922
# debian:bookworm-20260918-slim
ARG DEBIAN_IMAGE=docker.io/library/debian@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251
ARG KILN_FROM=source

FROM ${BUILD_IMAGE} AS source
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . .
# Two link flags, which reach only the final link of the bin crate (rustc links with its own
# lld): packed relative relocations (DT_RELR, glibc 2.36) take about 0.75 MB of PIE relocations
# off the binary, and folding identical functions (--icf=all; Rust never promises distinct
# function addresses, and data is not folded) about 0.6 MB of duplicate monomorphized code.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo rustc --locked --release --bin kiln -- \
      -C link-arg=-Wl,-z,pack-relative-relocs -C link-arg=-Wl,--icf=all \
    && install -m 0755 target/release/kiln /kiln

FROM scratch AS prebuilt
ARG KILN_BINARY=target/release/kiln
COPY ${KILN_BINARY} /kiln

FROM ${KILN_FROM} AS kiln

# The controller's root filesystem: kiln (stripped), each shared library `ldd` names (copied from
# this image, the Debian kiln was built for), the CA bundle, passwd/group with the non-root user,
# nsswitch.conf (glibc's files and dns lookups are built into libc.so.6), /tmp.
FROM ${BUILD_IMAGE} AS controller-root
COPY --from=kiln /kiln /rootfs/usr/local/bin/kiln
RUN set -eu; r=/rootfs; kiln=$r/usr/local/bin/kiln; \
    chmod 0755 "$kiln"; strip --strip-all "$kiln"; \
    for lib in $(ldd "$kiln" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do \
      mkdir -p "$r$(dirname "$lib")"; cp -L "$lib" "$r$lib"; \
    done; \
    mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/home/nonroot"; chmod 1777 "$r/tmp"; \
    cp -L /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/ca-certificates.crt"; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$r/etc/passwd"; \
    printf 'root:x:0:\nnonroot:x:65532:\n' > "$r/etc/group"; \
    printf 'hosts: files dns\n' > "$r/etc/nsswitch.conf"; \
    chown 65532:65532 "$r/home/nonroot"; \
    chroot "$r" /usr/local/bin/kiln --version

FROM scratch AS controller
COPY --from=controller-root /rootfs/ /
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kiln"]
CMD ["controller"]

FROM ${DEBIAN_IMAGE} AS builder
# libssl3 for kiln (git2's TLS); buildah brings its own libraries and configuration defaults.
RUN apt-get update \
    && apt-get install -y --no-install-recommends buildah ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY images/builder/containers/ /etc/containers/
COPY --from=controller-root /rootfs/usr/local/bin/kiln /usr/local/bin/kiln
# chroot isolation: RUN steps need no OCI runtime, no cgroup and no network namespace of their
# own, so buildah works in a privileged Pod and in a user-namespaced one alike.
ENV BUILDAH_ISOLATION=chroot
RUN kiln --version && buildah --version
WORKDIR /workspace
ENTRYPOINT ["/usr/local/bin/kiln"]
CMD ["--help"]
