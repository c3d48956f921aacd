#!/usr/bin/env bash
# Installs the real Kafka clients that Skein's integration tests drive, into
# $SKEIN_TOOLS_DIR (default: <repo>/.tools):
#
#   kafka-tools/libs   Apache Kafka 4.3.1 CLI tools and their jars (Maven Central,
#                      resolved by integration-tests/java/pom.xml)
#   kafka-broker/libs  Apache Kafka 4.3.1 broker jars, only with --with-kafka-broker
#                      or SKEIN_WITH_KAFKA_BROKER=1 (for benchmarks and for checking
#                      the test clients; see scripts/start-apache-kafka.sh)
#   bin/kafka-*        wrappers around the Java tools
#   bin/franz-client   integration-tests/go built against franz-go
#   venv/              Python with confluent-kafka and kafka-python
#                      (integration-tests/python/requirements.txt)
#
# Idempotent: each step leaves a stamp of its inputs and is skipped while the
# stamp matches, so a re-run costs well under a second. The Go build (CPU) runs
# alongside the downloads (network). Needs java (17+), mvn, python3 (with venv)
# and go on PATH.
set -euo pipefail

usage() {
  echo "usage: $0 [--with-kafka-broker]" >&2
  echo "  env: SKEIN_TOOLS_DIR (install dir), SKEIN_WITH_KAFKA_BROKER=1" >&2
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WITH_BROKER="${SKEIN_WITH_KAFKA_BROKER:-0}"
for arg in "$@"; do
  case "$arg" in
    --with-kafka-broker) WITH_BROKER=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-test-tools: unknown argument: $arg" >&2; usage; exit 2 ;;
  esac
done

TOOLS="${SKEIN_TOOLS_DIR:-$ROOT/.tools}"
mkdir -p "$TOOLS/bin"
TOOLS="$(cd "$TOOLS" && pwd)"
# Bump when the layout of what this script writes changes, to force a reinstall.
LAYOUT=1
START=$SECONDS

die() { echo "install-test-tools: $*" >&2; exit 1; }

for cmd in java mvn python3 go sha256sum; do
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is not on PATH (JDK 17, Maven, Python 3 and Go are needed)"
done

WORK="$(mktemp -d)"
GO_PID=""
cleanup() {
  if [ -n "$GO_PID" ]; then kill "$GO_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Each step appends "installed NAME(Ns)" or "skipped NAME" to $WORK/results.
result() { echo "$1" >>"$WORK/results"; }

# stamp FILE...: a short hash of the given files plus the layout version.
stamp() { { echo "layout=$LAYOUT"; cat "$@"; } | sha256sum | cut -c1-16; }

# up_to_date STAMPFILE WANT: whether STAMPFILE holds WANT.
up_to_date() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# run_logged WHAT CMD...: runs CMD quietly; on failure shows its output and stops.
run_logged() {
  local what="$1"; shift
  local log
  log="$(mktemp -p "$WORK")"
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    die "$what failed"
  fi
}

# ---------------------------------------------------------------- Go (franz-go)
GODIR="$ROOT/integration-tests/go"
FRANZ="$TOOLS/bin/franz-client"

install_go() {
  local want t0=$SECONDS
  want="$(stamp "$GODIR/go.mod" "$GODIR/go.sum" "$GODIR"/*.go)"
  if [ -x "$FRANZ" ] && up_to_date "$FRANZ.skein-stamp" "$want"; then
    result "skipped franz-client"
    return
  fi
  # GOTOOLCHAIN=local: build with the installed Go, never download a toolchain.
  # CGO_ENABLED=0: a static binary, and no C compiler in the build.
  run_logged "go build (integration-tests/go)" env -C "$GODIR" GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
    CGO_ENABLED=0 go build -trimpath -o "$FRANZ.tmp" .
  mv "$FRANZ.tmp" "$FRANZ"
  echo "$want" >"$FRANZ.skein-stamp"
  result "installed franz-client($(( SECONDS - t0 ))s)"
}

# ---------------------------------------------------------------- Java (Maven)
POM="$ROOT/integration-tests/java/pom.xml"

# The Java tools log through slf4j-simple (and a few classes through Log4j 2
# directly); both go to stderr at WARN so that stdout carries only tool output.
write_log4j2_config() {
  cat >"$1" <<'EOF'
# Written by scripts/install-test-tools.sh: Log4j 2 output to stderr, WARN and up.
status = error
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

# maven_copy PROFILE DEST: copies the profile's jars (and runtime deps) into DEST/libs.
maven_copy() {
  local profile="$1" dest="$2"
  local want t0=$SECONDS
  want="$(stamp "$POM")"
  if up_to_date "$dest/.skein-stamp" "$want"; then
    result "skipped $profile"
    return
  fi
  local tmp="$dest.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  run_logged "mvn ($profile)" mvn -q -B -Dstyle.color=never -f "$POM" -P "$profile" \
    dependency:copy-dependencies -DoutputDirectory="$tmp/libs"
  ls "$tmp"/libs/kafka-clients-*.jar >/dev/null 2>&1 || die "mvn ($profile) copied no kafka-clients jar"
  write_log4j2_config "$tmp/log4j2.properties"
  echo "$want" >"$tmp/.skein-stamp"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  result "installed $profile($(( SECONDS - t0 ))s)"
}

# write_wrapper NAME CLASS DEFAULT_JVM_OPTS: $TOOLS/bin/NAME runs CLASS from kafka-tools/libs.
# The wrapper finds the jars relative to itself, so the tools dir can be moved.
write_wrapper() {
  local name="$1" class="$2" jvm_default="$3"
  local file="$TOOLS/bin/$name"
  cat >"$file.tmp" <<EOF
#!/usr/bin/env bash
# Written by scripts/install-test-tools.sh: Apache Kafka's $name ($class).
# KAFKA_TOOLS_JVM_OPTS replaces the default JVM options ($jvm_default);
# KAFKA_TOOLS_LOG_LEVEL (default warn) sets the level of the log lines on stderr.
HOME_DIR="\$(cd "\$(dirname "\$(readlink -f "\${BASH_SOURCE[0]}")")/../kafka-tools" && pwd)"
exec java \${KAFKA_TOOLS_JVM_OPTS:-$jvm_default} \\
  -Djava.awt.headless=true \\
  -Dorg.slf4j.simpleLogger.logFile=System.err \\
  -Dorg.slf4j.simpleLogger.defaultLogLevel=\${KAFKA_TOOLS_LOG_LEVEL:-warn} \\
  -Dlog4j2.configurationFile="\$HOME_DIR/log4j2.properties" \\
  -cp "\$HOME_DIR/libs/*" $class "\$@"
EOF
  chmod +x "$file.tmp"
  mv "$file.tmp" "$file"
}

install_java() {
  maven_copy kafka-tools "$TOOLS/kafka-tools"
  if [ "$WITH_BROKER" = "1" ]; then
    maven_copy kafka-broker "$TOOLS/kafka-broker"
  fi
  # Short-lived admin tools start faster with the client compiler only and the
  # serial collector; the perf tests keep the JVM's defaults for throughput.
  local cli="-Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1" perf="-Xmx512m"
  write_wrapper kafka-topics             org.apache.kafka.tools.TopicCommand                        "$cli"
  write_wrapper kafka-console-producer   org.apache.kafka.tools.ConsoleProducer                     "$cli"
  write_wrapper kafka-console-consumer   org.apache.kafka.tools.consumer.ConsoleConsumer            "$cli"
  write_wrapper kafka-get-offsets        org.apache.kafka.tools.GetOffsetShell                      "$cli"
  # ConfigCommand is still Scala in 4.3.1 (kafka_2.13, package kafka.admin), not in kafka-tools.
  write_wrapper kafka-configs            kafka.admin.ConfigCommand                                  "$cli"
  write_wrapper kafka-consumer-groups    org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$cli"
  write_wrapper kafka-cluster            org.apache.kafka.tools.ClusterTool                         "$cli"
  write_wrapper kafka-producer-perf-test org.apache.kafka.tools.ProducerPerformance                 "$perf"
  write_wrapper kafka-consumer-perf-test org.apache.kafka.tools.ConsumerPerformance                 "$perf"
  write_wrapper kafka-e2e-latency        org.apache.kafka.tools.EndToEndLatency                     "$perf"
}

# ---------------------------------------------------------------- Python
REQS="$ROOT/integration-tests/python/requirements.txt"
VENV="$TOOLS/venv"

install_python() {
  local want t0=$SECONDS
  want="$(stamp "$REQS")"
  if [ -x "$VENV/bin/python" ] && up_to_date "$VENV/.skein-stamp" "$want"; then
    result "skipped venv"
    return
  fi
  rm -rf "$VENV"
  run_logged "python3 -m venv" python3 -m venv "$VENV"
  # Wheels only: every pinned package ships manylinux wheels for CPython 3.11.
  run_logged "pip install" "$VENV/bin/pip" install -q --disable-pip-version-check \
    --only-binary=:all: -r "$REQS"
  run_logged "python client import check" "$VENV/bin/python" -c \
    'import confluent_kafka, kafka, lz4, snappy, zstandard, crc32c'
  echo "$want" >"$VENV/.skein-stamp"
  result "installed venv($(( SECONDS - t0 ))s)"
}

# ---------------------------------------------------------------- run
install_go &
GO_PID=$!
install_java
install_python
if ! wait "$GO_PID"; then
  GO_PID=""
  die "building franz-client failed (see above)"
fi
GO_PID=""

installed="$(sed -n 's/^installed //p' "$WORK/results" | tr '\n' ' ')"
skipped="$(sed -n 's/^skipped //p' "$WORK/results" | tr '\n' ' ')"
echo "install-test-tools: installed: ${installed:-nothing }- up to date: ${skipped:-nothing }- in $TOOLS, $(( SECONDS - START ))s"
