/**
 * Builds dist/edge-bridge_<version>_amd64.deb with dpkg-deb from the bridge's single executable, its
 * systemd unit and the maintainer scripts in installer/bridge-deb. Builds the executable first if
 * it is missing.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { requireBuildTools, runBuildScript } from "./build-prerequisites.ts";
import { ensureBridgeExecutable, packageVersion } from "./build-sea.ts";
import { debianCopyright, type ExecutableContents } from "./deb-copyright.ts";
import { buildDebPackage, DEB_BUILD_TOOLS, type DebBuildOptions } from "./deb-package.ts";
import { documentationFiles } from "./package-docs.ts";

const root = resolve(import.meta.dirname, "..");

export async function buildBridgeDeb(options: DebBuildOptions = {}): Promise<string> {
  requireBuildTools(DEB_BUILD_TOOLS);
  const { binary, contents } = await ensureBridgeExecutable(options.outputDir);
  return buildDebPackage(
    {
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
        {
          source: join(root, "service-units/edge-bridge.service"),
          target: "lib/systemd/system/edge-bridge.service",
          mode: 0o644,
        },
        ...documentationFiles("edge-bridge"),
      ],
      copyright: debianCopyright({
        packageName: "edge-bridge",
        executable: "usr/bin/edge-bridge",
        contents: JSON.parse(readFileSync(contents, "utf8")) as ExecutableContents,
      }),
      maintainerScripts: join(root, "installer/bridge-deb"),
    },
    options,
  );
}

if (import.meta.main) await runBuildScript("build-bridge-deb", buildBridgeDeb);
