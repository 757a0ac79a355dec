# syntax=docker/dockerfile:1
# pulse-exporter: a small, non-root image (distroless, no shell, no curl). The `healthcheck`
# subcommand is the container health probe.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# The tests' helper crate is a workspace member: cargo reads its manifest (and builds nothing
# of it for the binary).
COPY tests/support/Cargo.toml ./tests/support/
# The code laid out by use (build.rs, docs/scaling.md): the image starts smaller.
COPY link ./link
COPY src ./src
COPY benches ./benches
COPY scripts/build-static ./scripts/
# Every source kind and jobs by default; `--build-arg FEATURES=postgres,redis` builds only
# those kinds, with no ping endpoint (add `jobs` for it): a smaller image, a shorter build
# (docs/scaling.md). Such an image needs a config of its own: the bundled examples name every
# kind.
ARG FEATURES=
# One static executable: the image needs no C library (distroless/static, about 2 MiB,
# against cc-debian12's glibc, OpenSSL and libstdc++).
RUN install -D "$(scripts/build-static "$FEATURES")" /out/usr/local/bin/pulse-exporter \
 && mkdir -p /out/tmp/pulse-demo/logs

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usr/local/bin/pulse-exporter /usr/local/bin/pulse-exporter
# Writable by the non-root user: the demo's default log directory (a named volume mounted here
# inherits the owner).
COPY --from=build --chown=nonroot:nonroot /out/tmp/pulse-demo /tmp/pulse-demo
COPY examples /etc/pulse-exporter
USER nonroot:nonroot
EXPOSE 7857
# The probe reads --web.listen-address and --web.config.file from PULSE_WEB_LISTEN_ADDRESS and
# PULSE_WEB_CONFIG_FILE: set those (not command-line flags) when changing either.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/pulse-exporter", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pulse-exporter"]
CMD ["--config.file", "/etc/pulse-exporter/local.yml"]
