/**
 * Builds dist/edge-agent-<version>-1.x86_64.rpm with rpmbuild (Debian package `rpm`) from the
 * single executable, the systemd unit and installer/rpm/edge-agent.spec.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { BUILD_TOOLS, requireBuildTools, runBuildScript } from "./build-prerequisites.ts";
import { ensureSingleExecutable, packageVersion } from "./build-sea.ts";
import { DOCS_DIR } from "./package-docs.ts";

const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");

export interface RpmBuildOptions {
  /** Where the .rpm (and its build tree) go; dist/ unless given (a test builds into its own directory). */
  readonly outputDir?: string;
}

export async function buildRpm(options: RpmBuildOptions = {}): Promise<string> {
  requireBuildTools([BUILD_TOOLS.rpmbuild]);
  const outputDir = options.outputDir ?? dist;
  const version = packageVersion();
  const { binary } = await ensureSingleExecutable(options.outputDir);
  const top = join(outputDir, "rpmbuild");
  rmSync(top, { recursive: true, force: true });
  mkdirSync(top, { recursive: true });
  execFileSync(
    "rpmbuild",
    [
      "-bb",
      "--quiet",
      "--target",
      "x86_64",
      "--define",
      `_topdir ${top}`,
      // Debian's rpm keeps its database in ~/.rpmdb by default: a build leaves nothing in the home dir.
      "--define",
      `_dbpath ${join(top, "rpmdb")}`,
      "--define",
      `edge_version ${version}`,
      "--define",
      `edge_binary ${binary}`,
      "--define",
      `edge_unit ${join(root, "service-units/edge-agent.service")}`,
      "--define",
      `edge_readme ${join(root, "README.md")}`,
      "--define",
      `edge_docs ${DOCS_DIR}`,
      join(root, "installer/rpm/edge-agent.spec"),
    ],
    { stdio: "inherit" },
  );
  const built = join(top, "RPMS", "x86_64");
  const name = readdirSync(built).find((file) => file.endsWith(".rpm"));
  if (!name) throw new Error(`rpmbuild wrote no package into ${built}`);
  const rpm = join(outputDir, name);
  renameSync(join(built, name), rpm);
  rmSync(top, { recursive: true, force: true });
  console.log(`built ${rpm} (${(statSync(rpm).size / 1024 / 1024).toFixed(1)} MiB)`);
  return rpm;
}

if (import.meta.main) await runBuildScript("build-rpm", buildRpm);
