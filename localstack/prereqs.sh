#!/usr/bin/env bash
# Report what `make test` needs from the machine: found (with its version),
# or missing with how to get it. What `make test` installs by itself into
# bin/ (MinIO, the Lambda emulator, moto, the Kafka clients, Trivy) is not
# listed. Exits 1 when something is missing.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
missing=0
row() { printf '%-8s %-34s %s\n' "$1" "$2" "$3"; }
have() { # label version-command how-to-get
  local v
  if v=$(eval "$2" 2>/dev/null) && [ -n "$v" ]; then row ok "$1" "$(head -1 <<<"$v")"
  else row MISSING "$1" "$3"; missing=1; fi
}
have "Go 1.26" "go version | grep -E 'go1\.(2[6-9]|[3-9][0-9])'" "https://go.dev/dl/"
have "curl" "curl --version | cut -d' ' -f1-2" "Debian: apt-get install curl"
have "Python 3.9+ with venv" "$PYTHON -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 9); print(sys.version.split()[0])'" "Debian: apt-get install python3 python3-venv (or set PYTHON)"
have "Terraform 1.5+" "terraform version | grep -E 'v1\.([5-9]|[1-9][0-9])'" "https://developer.hashicorp.com/terraform/install"
have "Terraform AWS provider" "$root/infra/terraform/cli-config.sh | grep -q . && sed -n 's/^ *path *= *\"\\(.*\\)\"/mirror \\1/p' $root/bin/terraformrc || (curl -fsS -m 5 -o /dev/null https://registry.terraform.io/v1/providers/hashicorp/aws/versions && echo 'from the public registry')" \
  "a filesystem mirror (TF_PROVIDER_MIRROR=dir holding registry.terraform.io/hashicorp/aws/...) or access to registry.terraform.io"
have "Java 17+" "java -version 2>&1 | grep -E 'version \"(1[7-9]|[2-9][0-9])'" "Debian: apt-get install openjdk-17-jdk-headless"
have "Maven" "mvn -B -v 2>/dev/null | sed -n 's/^[^A]*\(Apache Maven [0-9.]*\).*/\1/p'" "Debian: apt-get install maven"
have "Node.js 20+ with npm" "node --version | grep -E '^v(2[0-9]|[3-9][0-9])' && npm --version >/dev/null && node --version" "https://nodejs.org (or Debian's nodejs and npm)"
have "kcat (or root to apt-get it)" "command -v kcat || { [ \"\$(id -u)\" = 0 ] && command -v apt-get && echo 'installed by make test'; }" "Debian: apt-get install kcat"
have "Chromium (or root to apt-get it)" "command -v chromium || command -v chromium-browser || { [ \"\$(id -u)\" = 0 ] && command -v apt-get >/dev/null && echo 'installed by make test'; }" "Debian: apt-get install chromium"
exit $missing
