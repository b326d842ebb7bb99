#!/usr/bin/env bash
# Installs the Debian packages prunelab's tests and demos use, when missing:
#   dataset-fashion-mnist  real Fashion-MNIST in /usr/share/datasets/fashion-mnist (paper §5.2 runs)
#   fonts-dejavu-core      the font PNG figures are drawn with
set -euo pipefail
wanted="dataset-fashion-mnist fonts-dejavu-core"
missing=""
for p in $wanted; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: please install:$missing (no apt-get here)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "system-packages: installing$missing" >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
