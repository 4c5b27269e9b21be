#!/usr/bin/env bash
# Stop exactly the processes localstack/up.sh started, by pid file. A pid
# whose command line is not ours (the pid was recycled) is left alone.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/bin/localstack"

stop() { # pidfile name-fragment
  local f=$1 name=$2 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name"; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null
    printf 'localstack: stopped %s (pid %s)\n' "$name" "$pid" >&2
  fi
  rm -f "$f"
}

stop "$state/minio.pid" minio
stop "$state/moto.pid" moto_serial
rm -f "$root/bin/localstack.env"
exit 0
