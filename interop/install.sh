#!/usr/bin/env bash
# Install the Kafka clients the interop tests drive, pinned, into the
# ignored bin/ (kcat from Debian's packages when missing), and write where
# they are to bin/interop.env. Idempotent: what is in place is reused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin/interop"
mkdir -p "$out"
PYTHON=${PYTHON:-python3}
CONFLUENT_KAFKA_VERSION=2.16.1 # librdkafka 2.16 inside the wheel
SPARK_VERSION=4.1.1             # pyspark, and spark-sql-kafka-0-10 in interop/spark/pom.xml
log() { printf 'interop: %s\n' "$*" >&2; }
missing=()

# kcat (librdkafka 2.0 from Debian): installed with apt-get when missing.
if ! command -v kcat >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing kcat with apt-get (once)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat; } >"$out/apt.log" 2>&1 ||
    log "apt-get install kcat failed; see $out/apt.log"
fi
command -v kcat >/dev/null 2>&1 || missing+=("kcat (Debian: apt-get install kcat)")

# confluent-kafka in a virtual environment of its own.
if [ ! -x "$out/venv/bin/python" ] || ! "$out/venv/bin/python" -c "import confluent_kafka, importlib.metadata as m, sys; sys.exit(m.version('confluent-kafka') != '$CONFLUENT_KAFKA_VERSION')" 2>/dev/null; then
  log "installing confluent-kafka $CONFLUENT_KAFKA_VERSION into bin/interop/venv"
  "$PYTHON" -m venv "$out/venv" && "$out/venv/bin/pip" install -q --disable-pip-version-check "confluent-kafka==$CONFLUENT_KAFKA_VERSION" ||
    missing+=("confluent-kafka (pip install confluent-kafka==$CONFLUENT_KAFKA_VERSION)")
fi

# pyspark in the same environment (its Spark runs on the machine's Java 17).
if [ -x "$out/venv/bin/python" ] && ! "$out/venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('pyspark') != '$SPARK_VERSION')" 2>/dev/null; then
  log "installing pyspark $SPARK_VERSION into bin/interop/venv (once; about 400 MB)"
  "$out/venv/bin/pip" install -q --disable-pip-version-check "pyspark==$SPARK_VERSION" ||
    missing+=("pyspark (pip install pyspark==$SPARK_VERSION)")
fi

# Apache Kafka's Java client: built with Maven, dependencies cached in bin/m2.
if command -v mvn >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then
  stale_cp=false
  for f in $( { tr ':' ' ' <"$out/java.classpath"; } 2>/dev/null || echo missing); do [ -f "$f" ] || stale_cp=true; done
  if $stale_cp || [ ! -f "$out/java/interop-1.jar" ] || [ "$root/interop/java/pom.xml" -nt "$out/java/interop-1.jar" ] ||
     [ -n "$(find "$root/interop/java/src" -newer "$out/java/interop-1.jar" -print -quit)" ]; then
    log "building the Java interop program (Maven; dependencies cached in bin/m2)"
    mvn -q -B -Dmaven.repo.local="$root/bin/m2" -f "$root/interop/java/pom.xml" package \
      dependency:build-classpath -Dmdep.outputFile="$out/java.classpath" >"$out/mvn.log" 2>&1 ||
      { log "Maven failed; see $out/mvn.log"; missing+=("the Java interop program (see $out/mvn.log)"); }
  fi
else
  missing+=("Java 17 and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)")
fi

# Spark's Kafka source and sink: its jars from Maven Central (through the
# central-only settings: Spark's poms name mirrors not every network reaches).
if command -v mvn >/dev/null 2>&1 && [ ! -f "$out/spark-jars/spark-sql-kafka-0-10_2.13-$SPARK_VERSION.jar" ]; then
  log "fetching spark-sql-kafka-0-10 $SPARK_VERSION (Maven)"
  rm -rf "$out/spark-jars"
  mvn -q -B -s "$root/interop/maven-settings.xml" -Dmaven.repo.local="$root/bin/m2" -Dspark.version="$SPARK_VERSION" \
    -f "$root/interop/spark/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DincludeArtifactIds=spark-sql-kafka-0-10_2.13,spark-token-provider-kafka-0-10_2.13,kafka-clients,commons-pool2 \
    -DoutputDirectory="$out/spark-jars" >"$out/mvn-spark.log" 2>&1 ||
    { log "Maven failed; see $out/mvn-spark.log"; missing+=("spark-sql-kafka (see $out/mvn-spark.log)"); }
fi

# kafkajs from npm, at the version package-lock.json pins.
if command -v npm >/dev/null 2>&1; then
  if [ ! -d "$root/interop/node/node_modules/kafkajs" ]; then
    log "installing kafkajs with npm ci"
    (cd "$root/interop/node" && npm ci --no-audit --no-fund --cache "$root/bin/npm-cache" >"$out/npm.log" 2>&1) ||
      { log "npm ci failed; see $out/npm.log"; missing+=("kafkajs (see $out/npm.log)"); }
  fi
else
  missing+=("Node.js 20 with npm")
fi

{
  echo "# Written by interop/install.sh; read by the interop tests."
  command -v kcat >/dev/null 2>&1 && echo "STREAMBED_TEST_KCAT=$(command -v kcat)"
  [ -x "$out/venv/bin/python" ] && echo "STREAMBED_TEST_CONFLUENT_PYTHON=$out/venv/bin/python"
  [ -f "$out/java/interop-1.jar" ] && [ -f "$out/java.classpath" ] &&
    echo "STREAMBED_TEST_JAVA_CLASSPATH=$out/java/interop-1.jar:$(cat "$out/java.classpath")"
  [ -d "$root/interop/node/node_modules/kafkajs" ] && echo "STREAMBED_TEST_KAFKAJS=$root/interop/node"
  "$out/venv/bin/python" -c "import pyspark" 2>/dev/null && echo "STREAMBED_TEST_SPARK_PYTHON=$out/venv/bin/python"
  [ -f "$out/spark-jars/spark-sql-kafka-0-10_2.13-$SPARK_VERSION.jar" ] && echo "STREAMBED_TEST_SPARK_JARS=$out/spark-jars"
} >"$root/bin/interop.env"

if [ ${#missing[@]} -gt 0 ]; then
  log "could not install: ${missing[*]}"
  # The tests say which client is missing; CI fails there.
fi
exit 0
