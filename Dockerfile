# coupon-issuer: release build on Debian bookworm, small bookworm runtime.
#
#   docker build -t coupon-issuer .
#   docker compose up        (with Redis and Postgres; see docker-compose.yml)
#
# scripts/image-test builds this file unchanged and runs the image here (docs/deployment.md).

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /app

# Dependencies first, in their own layer: build them against stub sources so that editing src/
# does not rebuild every crate. Cargo refuses a manifest whose targets have no file, so every
# [[bench]] in Cargo.toml gets an empty stub here too (the real ones are not in the build
# context: only the binary is built). The workspace's other crates (crates/*: tests,
# lab, load tools) are not built, but Cargo reads their manifests, so each gets a stub library
# and binary (they declare no target paths of their own, so stubs are all they need).
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN mkdir -p src benches \
    && for stub in src/main.rs benches/metrics_hot_path.rs; do \
        echo 'fn main() {}' > "$stub"; \
    done \
    && : > src/lib.rs \
    && for crate in crates/*/; do \
        mkdir -p "$crate/src" && echo 'fn main() {}' > "$crate/src/main.rs" && : > "$crate/src/lib.rs"; \
    done \
    && cargo build --release --locked -p coupon-issuer --bin coupon-issuer \
    && rm -rf src \
        target/release/coupon-issuer* \
        target/release/deps/coupon_issuer-* \
        target/release/deps/libcoupon_issuer-* \
        target/release/.fingerprint/coupon-issuer-*

# The real sources. lua/, migrations/ and assets/ are compiled in (include_str! /
# sqlx::migrate!), so the runtime image does not need them. .sqlx/ is the committed data of the
# compile-time-checked queries (sqlx::query!): with SQLX_OFFLINE the build reads it and needs no
# database.
COPY src ./src
COPY lua ./lua
COPY migrations ./migrations
COPY assets ./assets
COPY .sqlx ./.sqlx
ENV SQLX_OFFLINE=true
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked -p coupon-issuer --bin coupon-issuer \
    && cp target/release/coupon-issuer /usr/local/bin/coupon-issuer

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: the system roots for TLS to a managed Redis or Postgres (SSL_CERT_FILE or a
# private CA file add to them). curl: the HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 coupon \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin coupon
COPY --from=builder /usr/local/bin/coupon-issuer /usr/local/bin/coupon-issuer

# Numeric, so that Kubernetes' runAsNonRoot can tell the user is not root without a passwd file.
USER 10001:10001
ENV LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/readyz || exit 1
# Exec form: the service is PID 1 and gets SIGTERM itself. It handles it (src/main.rs: stop
# accepting, finish requests in flight within SHUTDOWN_TIMEOUT_SECS, let the writer finish its
# batch, exit 0) and starts no child processes, so no init (tini) is needed to forward signals
# or reap zombies.
ENTRYPOINT ["coupon-issuer"]
CMD ["serve"]
