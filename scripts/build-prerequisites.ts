/**
 * The outside programs the package builders run, and the check that they are there before anything
 * is built: without it a missing one surfaced as a Node stack trace from deep inside a build (spawn
 * ENOENT), which named neither the program nor where to get it.
 */
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

export interface BuildTool {
  /** The program as the builders run it, looked up on PATH. */
  readonly command: string;
  /** The Debian package that provides it. */
  readonly debianPackage: string;
  /** What the build needs it for, for the error message. */
  readonly neededFor: string;
}

export const BUILD_TOOLS = {
  strip: { command: "strip", debianPackage: "binutils", neededFor: "the single executable" },
  dpkgDeb: { command: "dpkg-deb", debianPackage: "dpkg", neededFor: "the .deb" },
  xz: { command: "xz", debianPackage: "xz-utils", neededFor: "the .deb's compression" },
  rpmbuild: { command: "rpmbuild", debianPackage: "rpm", neededFor: "the .rpm" },
  wixl: { command: "wixl", debianPackage: "wixl", neededFor: "the .msi" },
  tar: { command: "tar", debianPackage: "tar", neededFor: "the .msi's Windows binaries" },
} as const satisfies Record<string, BuildTool>;

export class MissingBuildToolError extends Error {
  readonly code = "EDGE_BUILD_TOOL_MISSING";
  readonly missing: readonly BuildTool[];
  constructor(missing: readonly BuildTool[]) {
    const named = missing.map(
      (tool) => `${tool.command} (Debian package ${tool.debianPackage}, for ${tool.neededFor})`,
    );
    const packages = [...new Set(missing.map((tool) => tool.debianPackage))].join(" ");
    super(
      `missing build tool${missing.length > 1 ? "s" : ""}: ${named.join(", ")}; install with: apt-get install ${packages}`,
    );
    this.name = "MissingBuildToolError";
    this.missing = missing;
  }
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The tools not found as executable files in any directory of `searchPath` (a PATH value). */
export function findMissingTools(tools: readonly BuildTool[], searchPath: string): BuildTool[] {
  const directories = searchPath.split(delimiter).filter((directory) => directory !== "");
  return tools.filter((tool) => !directories.some((directory) => isExecutableFile(join(directory, tool.command))));
}

/** Throws MissingBuildToolError naming every tool of `tools` that PATH lacks. */
export function requireBuildTools(tools: readonly BuildTool[], searchPath: string = process.env.PATH ?? ""): void {
  const missing = findMissingTools(tools, searchPath);
  if (missing.length > 0) throw new MissingBuildToolError(missing);
}

/**
 * Runs a build script's main: a missing tool ends it with exit 1 and one line on stderr, not a
 * stack trace. Any other error is a bug in the build and keeps its trace.
 */
export async function runBuildScript(name: string, build: () => Promise<unknown>): Promise<void> {
  try {
    await build();
  } catch (error) {
    if (!(error instanceof MissingBuildToolError)) throw error;
    console.error(`${name}: ${error.message}`);
    process.exitCode = 1;
  }
}

// `npm run package` checks every tool first: all that are missing, named at once, before a build
// of minutes stops at the first.
if (import.meta.main)
  await runBuildScript("npm run package", async () => requireBuildTools(Object.values(BUILD_TOOLS)));
