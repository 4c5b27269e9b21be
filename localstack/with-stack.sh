#!/usr/bin/env bash
# Run a command with the local stack up and its endpoints in the environment,
# and take the stack down afterwards, also when the command fails or is
# interrupted. Usage: localstack/with-stack.sh go test ./...
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
trap '"$root/localstack/down.sh"' EXIT
"$root/localstack/up.sh" || exit 1
# The Kafka clients the interop tests drive (kcat, confluent-kafka, the
# Java client, kafkajs), installed into bin/ when missing.
"$root/interop/install.sh"
set -a
# shellcheck disable=SC1091
. "$root/bin/localstack.env"
# shellcheck disable=SC1091
. "$root/bin/interop.env"
set +a
"$@"
