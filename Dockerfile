# imgscout: Redis with the imgscout module loaded.
#
#   docker build --tag imgscout:0.1 .
#   docker run --detach --publish 6379:6379 --mount src=imgscoutdata,dst=/data --name imgscout imgscout:0.1
#
# Stage 1 builds libimgscout.so exactly as CI does (scripts/test.sh), with the locked
# dependencies; stage 2 is the official Redis image plus the module and docker/redis.conf.

ARG RUST_VERSION=1
# The module needs Redis 7.0 or later; the tests run it on 7.0.
ARG REDIS_VERSION=7.0

FROM rust:${RUST_VERSION}-bookworm AS build
# bindgen (through the redis-module crate) needs libclang at build time.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace: cargo resolves every member against Cargo.lock even when building one.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY crates crates
RUN cargo build --release --locked -p imgscout-redis

# Same Debian release as the build stage, so the module links against the same glibc.
FROM redis:${REDIS_VERSION}-bookworm
COPY --from=build /src/target/release/libimgscout.so /usr/lib/redis/modules/libimgscout.so
COPY docker/redis.conf /usr/local/etc/redis/redis.conf
VOLUME /data
EXPOSE 6379
# Healthy once the server answers and the module is loaded.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD redis-cli ping | grep -q PONG && redis-cli module list | grep -q imgscout || exit 1
# The official entrypoint drops to the redis user and hands /data to it.
CMD ["redis-server", "/usr/local/etc/redis/redis.conf"]
