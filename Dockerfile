# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run in a small Debian image as a
# non-root user. The container runs the same binary and config path as `cargo run`.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in intake fuzz ui_tenants cluster_soak; do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src ./src
COPY benches ./benches
# The OpenAPI document is compiled into the binary.
COPY docs ./docs
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin minimax-connector

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin mmc
WORKDIR /app
COPY --from=build /src/target/release/minimax-connector /usr/local/bin/minimax-connector
COPY config ./config
USER mmc
# Listen on all interfaces inside the container; Redis comes from the environment.
ENV MMC__SERVER__HOST=0.0.0.0 \
    MMC__SERVER__PORT=8080 \
    MMC__TELEMETRY__FORMAT=json \
    MMC__DEMO__ENABLED=false
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health/live || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/minimax-connector"]
