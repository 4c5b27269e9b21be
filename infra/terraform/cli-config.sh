#!/usr/bin/env bash
# Find a local filesystem mirror of the AWS provider and write a Terraform
# CLI configuration that uses it (bin/terraformrc). Prints the variables to
# export: TF_CLI_CONFIG_FILE when a mirror was found, nothing otherwise (the
# public registry is then used as usual).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mirror=""
for dir in ${TF_PROVIDER_MIRROR:-} /opt/tf-plugins "$HOME/.terraform.d/plugins" /usr/share/terraform/plugins /usr/local/share/terraform/plugins; do
  if [ -n "$dir" ] && [ -d "$dir/registry.terraform.io/hashicorp/aws" ]; then mirror=$dir; break; fi
done
if [ -z "$mirror" ]; then
  found=$(find / -path /proc -prune -o -name 'terraform-provider-aws*' -print 2>/dev/null | head -1 || true)
  # .../registry.terraform.io/hashicorp/aws/<version>/<os_arch>/terraform-provider-aws_*
  [ -n "$found" ] && mirror=$(dirname "$(dirname "$(dirname "$(dirname "$(dirname "$found")")")")")
fi
[ -n "$mirror" ] || exit 0
mkdir -p "$root/bin"
cat >"$root/bin/terraformrc" <<RC
# Written by infra/terraform/cli-config.sh: providers from a local mirror.
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
RC
echo "TF_CLI_CONFIG_FILE=$root/bin/terraformrc"
