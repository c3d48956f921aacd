# Skein in a container: `docker build -t skein .` then
# `docker run -p 9092:9092 -p 9644:9644 -v skein-data:/var/lib/skein skein`.
# Clients outside the container reach it through the advertised listener;
# set SKEIN_ADVERTISED_LISTENERS=PLAINTEXT://<host>:9092 when that is not localhost.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev clang && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p skein-broker --bin skein && cp target/release/skein /usr/local/bin/skein

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/skein skein && mkdir -p /var/lib/skein && chown skein /var/lib/skein
COPY --from=build /usr/local/bin/skein /usr/local/bin/skein
USER skein
VOLUME /var/lib/skein
EXPOSE 9092 9644
ENV SKEIN_LISTENERS=PLAINTEXT://0.0.0.0:9092 \
    SKEIN_ADVERTISED_LISTENERS=PLAINTEXT://localhost:9092 \
    SKEIN_LOG_DIRS=/var/lib/skein \
    SKEIN_SKEIN_HTTP_LISTENER=0.0.0.0:9644
HEALTHCHECK --interval=10s --timeout=3s CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9644 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ok <&3"]
ENTRYPOINT ["/usr/local/bin/skein"]
