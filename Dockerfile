# syntax=docker/dockerfile:1
# pulse-exporter: a small, non-root image (distroless, no shell, no curl). The `healthcheck`
# subcommand is the container health probe.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin pulse-exporter \
 && install -D target/release/pulse-exporter /out/usr/local/bin/pulse-exporter \
 && mkdir -p /out/data/logs /out/etc/pulse-exporter

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/pulse-exporter /usr/local/bin/pulse-exporter
# Writable by the non-root user: the demo writes its logs here (a named volume inherits this).
COPY --from=build --chown=nonroot:nonroot /out/data /data
COPY examples /etc/pulse-exporter
USER nonroot:nonroot
EXPOSE 7857
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/pulse-exporter", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/pulse-exporter"]
CMD ["--config.file", "/etc/pulse-exporter/local.yml"]
