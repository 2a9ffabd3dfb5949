# citus-proxy container image: built here, run as a non-root user on a slim Debian.
#
#   docker build -t citus-proxy .
#   docker run -p 6432:6432 -p 9930:9930 -v $PWD/my.toml:/etc/citus-proxy/citus-proxy.toml:ro \
#     -e CITUS_PROXY_CONFIG=/etc/citus-proxy/citus-proxy.toml citus-proxy
#
# compose/docker-compose.yml builds it as service `proxy`. Needs BuildKit (the default builder
# since Docker 23) for the cache mounts. proxy/tests/compose.rs checks this file's shape.

# The workspace's rust-version (Cargo.toml); every locked dependency of citus-proxy builds with it.
ARG RUST_VERSION=1.89

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The whole workspace (.dockerignore leaves out targets, .git, compose/ and docs/): cargo needs
# every member's manifest even to build one package.
COPY . .
# The binary is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p citus-proxy --bin citus-proxy \
 && install -D -m 0755 target/release/citus-proxy /out/citus-proxy

FROM debian:bookworm-slim AS runtime
# ca-certificates: upstream.sslmode verify-ca/verify-full with the system's roots;
# curl: the compose health check (GET /readyz on the metrics listener).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 citus-proxy \
 && useradd --system --uid 10001 --gid citus-proxy --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin citus-proxy
COPY --from=build /out/citus-proxy /usr/local/bin/citus-proxy
USER 10001:10001
# 6432: PostgreSQL clients (`listen`); 9930: /metrics, /slo, /healthz, /readyz (`metrics.listen`).
# Both must be set to 0.0.0.0:… in the configuration to be reachable from outside the container.
EXPOSE 6432 9930
# SIGTERM drains (shutdown.timeout); give `docker stop` at least that long.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/citus-proxy"]
