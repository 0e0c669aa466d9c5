# qianmian on Debian 12, from Debian packages only (README, "Run it as a service").
#   docker build -t qianmian .                 # builds, runs no tests, packs the .deb
#   docker run -p 5555:5555 -v qianmian:/var/lib/qianmian qianmian
# Not built in this repository's CI (no Docker there); compose.yaml runs two replicas on Redis.

# Stage 1: build with the same script as CI (scripts/setup.sh installs Debian's -dev packages).
FROM debian:12 AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# Only the program and the client library (no tests); cpack packs what was built.
RUN rm -rf build && bash scripts/build.sh qianmian qm_client_shared && cd build && cpack -G DEB -B /pkg

# Stage 2: the runtime: the qianmian .deb, its dependencies resolved by apt from Debian.
FROM debian:12-slim AS qianmian
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /pkg/qianmian_*.deb /tmp/
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends /tmp/qianmian_*.deb \
    && rm -rf /var/lib/apt/lists/* /tmp/*.deb
# The package's configuration, with the address every container listens on.
ENV QIANMIAN_SERVER_BIND=tcp://0.0.0.0:5555
USER qianmian
WORKDIR /var/lib/qianmian
VOLUME /var/lib/qianmian
EXPOSE 5555
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD ["qianmian", "client", "--connect", "tcp://127.0.0.1:5555", "--timeout", "2000", "health"]
# The unit's ExecStart (packaging/qianmian-serve.service).
CMD ["qianmian", "serve", "--config", "/etc/qianmian/qianmian.toml"]

# Redis for compose.yaml, from Debian's redis-server too.
FROM debian:12-slim AS redis
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*
USER redis
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--appendonly", "yes", "--dir", "/var/lib/redis"]
