# coupon-issuer: release build on Debian bookworm, small bookworm runtime.
#
#   docker build -t coupon-issuer .
#   docker compose up        (with Redis and Postgres; see docker-compose.yml)

# ---- build ------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /app

# Dependencies first, in their own layer: build them against stub sources so
# that editing src/ does not rebuild every crate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && : > src/lib.rs \
    && cargo build --release --locked --bin coupon-issuer \
    && rm -rf src \
        target/release/coupon-issuer* \
        target/release/deps/coupon_issuer-* \
        target/release/deps/libcoupon_issuer-* \
        target/release/.fingerprint/coupon-issuer-*

# The real sources. lua/ and migrations/ are embedded at compile time
# (include_str! / sqlx::migrate!), so the runtime image does not need them.
COPY src ./src
COPY lua ./lua
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin coupon-issuer \
    && cp target/release/coupon-issuer /usr/local/bin/coupon-issuer

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin coupon
COPY --from=builder /usr/local/bin/coupon-issuer /usr/local/bin/coupon-issuer

USER coupon
ENV LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json \
    RUST_LOG=info
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["coupon-issuer"]
CMD ["serve"]
