/**
 * Builds dist/edge-agent_<version>_amd64.deb with dpkg-deb from the single executable, the systemd
 * unit and the maintainer scripts in installer/deb. Builds the executable first if it is missing.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { requireBuildTools, runBuildScript } from "./build-prerequisites.ts";
import { ensureSingleExecutable, packageVersion } from "./build-sea.ts";
import { debianCopyright, type ExecutableContents } from "./deb-copyright.ts";
import { buildDebPackage, DEB_BUILD_TOOLS, type DebBuildOptions } from "./deb-package.ts";
import { documentationFiles } from "./package-docs.ts";

const root = resolve(import.meta.dirname, "..");

export async function buildDeb(options: DebBuildOptions = {}): Promise<string> {
  requireBuildTools(DEB_BUILD_TOOLS);
  const { description } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { description: string };
  // The executable built beside the package (a test's directory), else dist/'s.
  const { binary, contents } = await ensureSingleExecutable(options.outputDir);
  return buildDebPackage(
    {
      name: "edge-agent",
      version: packageVersion(),
      section: "admin",
      summary: description,
      details: ["A single executable (Node.js bundled) run as the systemd service edge-agent."],
      depends: ["passwd"],
      files: [
        { source: binary, target: "usr/bin/edge-agent", mode: 0o755 },
        {
          source: join(root, "service-units/edge-agent.service"),
          target: "lib/systemd/system/edge-agent.service",
          mode: 0o644,
        },
        ...documentationFiles("edge-agent"),
      ],
      copyright: debianCopyright({
        packageName: "edge-agent",
        executable: "usr/bin/edge-agent",
        contents: JSON.parse(readFileSync(contents, "utf8")) as ExecutableContents,
      }),
      maintainerScripts: join(root, "installer/deb"),
    },
    options,
  );
}

if (import.meta.main) await runBuildScript("build-deb", buildDeb);
