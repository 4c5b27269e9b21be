#!/usr/bin/env bash
# Start the local AWS stack without Docker: MinIO (S3) and a serialized moto
# server (DynamoDB and S3) on loopback. Waits until both answer, bootstraps
# the default bucket and table, and writes the endpoints to bin/localstack.env,
# which the tests read (and a developer sources for `streambed serve`).
#
# Idempotent: services already running from an earlier `up` are reused.
# Ports: MINIO_PORT (default 9100), MOTO_PORT (default 5100).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/bin/localstack"
mkdir -p "$state"

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
MINIO_PORT=${MINIO_PORT:-9100}
MOTO_PORT=${MOTO_PORT:-5100}
MINIO_USER=${MINIO_USER:-streambed}
MINIO_PASSWORD=${MINIO_PASSWORD:-streambed-local-secret}
PYTHON=${PYTHON:-python3}

log() { printf 'localstack: %s\n' "$*" >&2; }

# Prerequisites first: what cannot be installed from here is reported at
# once, not after minutes of building.
need=()
command -v go >/dev/null 2>&1 || need+=("Go 1.26 (https://go.dev/dl/)")
command -v curl >/dev/null 2>&1 || need+=("curl (Debian: apt-get install curl)")
"$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))' 2>/dev/null ||
  need+=("Python 3.9+ with venv as $PYTHON (Debian: apt-get install python3 python3-venv; or set PYTHON)")
if [ ${#need[@]} -gt 0 ]; then
  log "missing, and not installable from here:"
  printf '  - %s\n' "${need[@]}" >&2
  exit 1
fi

# moto's server in a virtual environment of its own under bin/, at the
# versions localstack/requirements.txt pins (a system Python may refuse
# plain pip installs, and its packages are not ours to change).
venv="$state/venv"
reqs="$root/localstack/requirements.txt"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$reqs" "$venv/requirements.txt"; then
  log "installing moto's server into bin/localstack/venv (pinned; once)"
  rm -rf "$venv"
  if "$PYTHON" -m venv "$venv" >"$state/pip.log" 2>&1 &&
     "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs" >>"$state/pip.log" 2>&1; then
    cp "$reqs" "$venv/requirements.txt"
  else
    log "installing moto from PyPI failed; see $state/pip.log"
    exit 1
  fi
fi
MOTO_PYTHON="$venv/bin/python"

alive() { # pidfile name-fragment
  [ -f "$1" ] || return 1
  local pid; pid=$(cat "$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_http() { # url name pidfile
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    if ! alive "$3" "$2"; then log "$2 exited during start-up; its log:"; tail -30 "$state/$2.log" >&2; return 1; fi
    sleep 0.1
  done
  log "$2 did not answer at $1 within 20s"; return 1
}

# MinIO is built from source once and cached in bin/ (about 4 minutes).
if [ ! -x "$root/bin/minio" ] || [ "$(cat "$root/bin/minio.version" 2>/dev/null)" != "$MINIO_VERSION" ]; then
  log "building MinIO $MINIO_VERSION into bin/ (once; a few minutes)"
  GOBIN="$root/bin" GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION"
  echo "$MINIO_VERSION" >"$root/bin/minio.version"
fi

# The Lambda Runtime Interface Emulator, for the functions' tests.
if [ ! -x "$root/bin/aws-lambda-rie" ] || [ "$(cat "$root/bin/aws-lambda-rie.version" 2>/dev/null)" != "$RIE_VERSION" ]; then
  log "building aws-lambda-rie $RIE_VERSION into bin/"
  GOBIN="$root/bin" GOFLAGS=-buildvcs=false go install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$RIE_VERSION"
  echo "$RIE_VERSION" >"$root/bin/aws-lambda-rie.version"
fi

# Chromium, for the console's browser tests: Debian's package, installed
# when missing (needs root; elsewhere the tests say how to get it).
chromium_bin=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium_bin" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "installing chromium with apt-get (once)"
  if apt-get update -qq >"$state/apt.log" 2>&1 &&
     DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >>"$state/apt.log" 2>&1; then
    chromium_bin=$(command -v chromium || true)
  else
    log "apt-get install chromium failed; see $state/apt.log"
  fi
fi

if alive "$state/minio.pid" minio; then
  log "MinIO already running (pid $(cat "$state/minio.pid"))"
else
  port_free "$MINIO_PORT" || { log "port $MINIO_PORT is taken; set MINIO_PORT"; exit 1; }
  MINIO_ROOT_USER=$MINIO_USER MINIO_ROOT_PASSWORD=$MINIO_PASSWORD MINIO_BROWSER=off \
    MINIO_UPDATE=off MINIO_CI_CD=1 \
    nohup "$root/bin/minio" server --quiet --address "127.0.0.1:$MINIO_PORT" \
    --console-address "127.0.0.1:$((MINIO_PORT + 1))" "$state/minio-data" \
    >"$state/minio.log" 2>&1 &
  echo $! >"$state/minio.pid"
  log "MinIO starting on 127.0.0.1:$MINIO_PORT (pid $!)"
fi

if alive "$state/moto.pid" moto_serial; then
  log "moto already running (pid $(cat "$state/moto.pid"))"
else
  port_free "$MOTO_PORT" || { log "port $MOTO_PORT is taken; set MOTO_PORT"; exit 1; }
  nohup "$MOTO_PYTHON" "$root/localstack/moto_serial.py" --host 127.0.0.1 --port "$MOTO_PORT" \
    >"$state/moto.log" 2>&1 &
  echo $! >"$state/moto.pid"
  log "moto (serialized) starting on 127.0.0.1:$MOTO_PORT (pid $!)"
fi

wait_http "http://127.0.0.1:$MINIO_PORT/minio/health/live" minio "$state/minio.pid"
wait_http "http://127.0.0.1:$MOTO_PORT/moto-api/" moto_serial "$state/moto.pid"

cat >"$root/bin/localstack.env" <<ENV
# Written by localstack/up.sh; read by the tests and sourced for streambed serve.
STREAMBED_TEST_MINIO_ENDPOINT=http://127.0.0.1:$MINIO_PORT
STREAMBED_TEST_MINIO_ACCESS_KEY=$MINIO_USER
STREAMBED_TEST_MINIO_SECRET_KEY=$MINIO_PASSWORD
STREAMBED_TEST_MOTO_ENDPOINT=http://127.0.0.1:$MOTO_PORT
STREAMBED_TEST_RIE=$root/bin/aws-lambda-rie
ENV
if [ -n "$chromium_bin" ]; then
  echo "STREAMBED_TEST_CHROMIUM=$chromium_bin" >>"$root/bin/localstack.env"
fi

# Terraform, with the AWS provider from a local filesystem mirror when there
# is one (no registry is reachable on the development machines).
if command -v terraform >/dev/null 2>&1; then
  echo "STREAMBED_TEST_TERRAFORM=$(command -v terraform)" >>"$root/bin/localstack.env"
  "$root/infra/terraform/cli-config.sh" >>"$root/bin/localstack.env"
fi

PYTHON="$MOTO_PYTHON" "$root/localstack/bootstrap.sh"
log "ready; endpoints in bin/localstack.env"
