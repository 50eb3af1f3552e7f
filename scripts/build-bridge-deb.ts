/**
 * Builds dist/edge-bridge_<version>_amd64.deb with dpkg-deb from the bridge's single executable, its
 * systemd unit and the maintainer scripts in installer/bridge-deb. Builds the executable first if
 * it is missing.
 */
import { join, resolve } from "node:path";
import { ensureBridgeExecutable, packageVersion } from "./build-sea.ts";
import { buildDebPackage } from "./deb-package.ts";

const root = resolve(import.meta.dirname, "..");

export async function buildBridgeDeb(): Promise<string> {
  const { binary } = await ensureBridgeExecutable();
  return buildDebPackage({
    name: "edge-bridge",
    version: packageVersion(),
    section: "net",
    summary: "edge-agent's bridge: agent events from NATS JetStream into Kafka, exactly once",
    details: [
      "A single executable (Node.js bundled) run as the systemd service edge-bridge. Installed",
      "enabled but not started: set the Kafka and NATS settings in /etc/edge-bridge/settings.json",
      "or /etc/default/edge-bridge, then start it.",
    ],
    depends: ["passwd"],
    files: [
      { source: binary, target: "usr/bin/edge-bridge", mode: 0o755 },
      { source: join(root, "service-units/edge-bridge.service"), target: "lib/systemd/system/edge-bridge.service", mode: 0o644 },
      { source: join(root, "README.md"), target: "usr/share/doc/edge-bridge/README.md", mode: 0o644 },
    ],
    maintainerScripts: join(root, "installer/bridge-deb"),
  });
}

if (import.meta.main) await buildBridgeDeb();
