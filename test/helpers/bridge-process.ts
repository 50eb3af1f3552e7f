import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type CliResult, runScript } from "./agent-process.ts";
import { disposeAtFileEnd } from "./dispose-at-file-end.ts";

const BRIDGE_CLI = resolve(import.meta.dirname, "../../src/bridge/cli/main.ts");

/** Runs one `edge-bridge` command (e.g. `pinot-setup`) to completion, as an operator runs it. */
export function runBridgeCli(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<CliResult> {
  return runScript(BRIDGE_CLI, args, env, timeoutMs);
}

export interface BridgeProcess {
  readonly child: ChildProcess;
  readonly dataDir: string;
  output(): string;
  logs(): Array<Record<string, unknown>>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  dispose(): Promise<void>;
}

/**
 * Starts `edge-bridge run` as a real child process with its own data and config dirs: from the
 * sources (under `node` with `nodeArgs`, e.g. the flags the executable has baked in), or a built
 * executable (`executable`).
 */
export async function startBridgeProcess(
  env: Record<string, string>,
  options: { command?: string; executable?: string; nodeArgs?: readonly string[] } = {},
): Promise<BridgeProcess> {
  const root = await mkdtemp(join(tmpdir(), "edge-bridge-test-"));
  const dataDir = join(root, "data");
  const [file, args] = options.executable
    ? [options.executable, [options.command ?? "run"]]
    : [process.execPath, [...(options.nodeArgs ?? []), BRIDGE_CLI, options.command ?? "run"]];
  const child = spawn(file, args, {
    env: {
      ...process.env,
      EDGE_BRIDGE_DATA_DIR: dataDir,
      EDGE_BRIDGE_CONFIG_DIR: join(root, "config"),
      EDGE_BRIDGE_LOG_LEVEL: "info",
      // Metrics are on by default at one fixed port: bridges of tests running side by side would
      // fight over it. A test of the metrics gives its own port.
      EDGE_BRIDGE_METRICS_LISTEN: "off",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const append = (chunk: Buffer): void => {
    output += chunk.toString();
    // Keep the tail: a long run logs a lot.
    if (output.length > 4_000_000) output = output.slice(-2_000_000);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    child.once("exit", (code, signal) => resolveExit({ code, signal })),
  );
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    child,
    dataDir,
    exited,
    output: () => output,
    logs: () =>
      output
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
    async stop(signal = "SIGTERM") {
      if (running()) child.kill(signal);
      return exited;
    },
    dispose: disposeAtFileEnd(async () => {
      if (running()) child.kill("SIGKILL");
      await exited;
      // For a failing test: EDGE_BRIDGE_TEST_LOG_DIR keeps each bridge's log.
      const logDir = process.env.EDGE_BRIDGE_TEST_LOG_DIR;
      if (logDir) await writeFile(join(logDir, `bridge-${child.pid}.log`), output).catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    }),
  };
}
