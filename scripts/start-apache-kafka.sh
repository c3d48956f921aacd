#!/usr/bin/env bash
# Runs a real Apache Kafka 4.3.1 broker in the foreground: one KRaft node that is
# both broker and controller, on 127.0.0.1:<port>, keeping its data in <data-dir>.
# Used by the benchmarks (as the baseline) and to check Skein's test clients
# against the real thing.
#
#   scripts/start-apache-kafka.sh <port> <data-dir>
#
# Needs the broker jars: scripts/install-test-tools.sh --with-kafka-broker.
# The first start formats <data-dir>; later starts with the same <data-dir>
# reuse its data and its controller port. Stop it with SIGTERM (clean shutdown)
# or SIGINT. The broker is ready once <port> accepts connections.
#
# Environment (all optional):
#   SKEIN_TOOLS_DIR          where install-test-tools.sh installed (default <repo>/.tools)
#   KAFKA_CONTROLLER_PORT    controller listener port (default: a free port, chosen once)
#   KAFKA_HEAP_OPTS          default -Xms1g -Xmx1g
#   KAFKA_JVM_OPTS           default G1 options like Kafka's own start scripts
#   KAFKA_LOG_LEVEL          broker log level, to stderr (default warn; info for details)
#   KAFKA_EXTRA_PROPERTIES   extra server.properties lines, newline-separated
#                            (e.g. $'num.partitions=3\nlog.flush.interval.messages=1')
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 <port> <data-dir>" >&2
  exit 2
fi
PORT="$1"
DATA="$2"
case "$PORT" in ''|*[!0-9]*) echo "start-apache-kafka: port must be a number: $PORT" >&2; exit 2 ;; esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${SKEIN_TOOLS_DIR:-$ROOT/.tools}"
LIBS="$TOOLS/kafka-broker/libs"
if ! ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then
  echo "start-apache-kafka: no broker jars in $LIBS; run: scripts/install-test-tools.sh --with-kafka-broker" >&2
  exit 1
fi

mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
PROPS="$DATA/server.properties"

# The controller port is chosen once per data dir and kept in server.properties.
CPORT="${KAFKA_CONTROLLER_PORT:-}"
if [ -z "$CPORT" ] && [ -f "$PROPS" ]; then
  CPORT="$(sed -n 's/^controller\.quorum\.voters=1@127\.0\.0\.1:\([0-9]*\)$/\1/p' "$PROPS")"
fi
if [ -z "$CPORT" ]; then
  CPORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi

cat >"$PROPS" <<EOF
# Written by scripts/start-apache-kafka.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA/logs
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
${KAFKA_EXTRA_PROPERTIES:-}
EOF

LEVEL="${KAFKA_LOG_LEVEL:-warn}"
# Kafka logs through slf4j-simple (to stderr) and, in a few places, Log4j 2 directly.
cat >"$DATA/log4j2.properties" <<EOF
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $LEVEL
rootLogger.appenderRef.stderr.ref = STDERR
EOF
COMMON_ARGS=(
  -Djava.awt.headless=true
  -Dorg.slf4j.simpleLogger.logFile=System.err
  -Dorg.slf4j.simpleLogger.defaultLogLevel="$LEVEL"
  -Dorg.slf4j.simpleLogger.showDateTime=true
  "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS"
  -Dlog4j2.configurationFile="$DATA/log4j2.properties"
  -cp "$LIBS/*"
)

if [ ! -f "$DATA/logs/meta.properties" ]; then
  # Kafka's cluster ids are 16 random bytes in unpadded URL-safe base64.
  CLUSTER_ID="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "${COMMON_ARGS[@]}" \
    kafka.tools.StorageTool format --cluster-id "$CLUSTER_ID" --config "$PROPS" --ignore-formatted >&2
fi

# shellcheck disable=SC2086 # the option variables hold several words
exec java ${KAFKA_HEAP_OPTS:--Xms1g -Xmx1g} \
  ${KAFKA_JVM_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent} \
  "${COMMON_ARGS[@]}" kafka.Kafka "$PROPS"
