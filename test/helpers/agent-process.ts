import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { disposeAtFileEnd } from "./dispose-at-file-end.ts";
import { withDeadline } from "./wait-for.ts";

const CLI = resolve(import.meta.dirname, "../../src/cli/main.ts");

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly dataDir: string;
  readonly configDir: string;
  /** Parsed JSON log lines so far. */
  logs(): Array<Record<string, unknown>>;
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  dispose(): Promise<void>;
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `node <script> ...args` to completion (bounded by `timeoutMs`): a command of ours, as an
 * operator runs it. The bound is for a command that hangs, not a speed limit: in CI, beside the
 * package builds, `dev-setup` (16 stream creations) once took over 20 s.
 */
export async function runScript(
  script: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 45_000,
): Promise<CliResult> {
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  try {
    const code = await withDeadline(`${script} ${args.join(" ")} to finish`, exited, timeoutMs);
    return { code, stdout, stderr };
  } catch (error) {
    child.kill("SIGKILL");
    throw new Error(`${(error as Error).message}\n${stdout}\n${stderr}`, { cause: error });
  }
}

/** Runs one `edge-agent` command to completion (bounded by `timeoutMs`). */
export function runCli(args: readonly string[], env: Record<string, string>, timeoutMs = 20_000): Promise<CliResult> {
  return runScript(CLI, args, env, timeoutMs);
}

/** Starts `edge-agent run` as a real child process with its own data and config dirs. */
export async function startAgentProcess(
  env: Record<string, string>,
  dirs?: { dataDir: string; configDir: string },
): Promise<AgentProcess> {
  const root = dirs ? undefined : await mkdtemp(join(tmpdir(), "edge-agent-daemon-"));
  const dataDir = dirs?.dataDir ?? join(root as string, "data");
  const configDir = dirs?.configDir ?? join(root as string, "config");
  const child = spawn(process.execPath, [CLI, "run"], {
    env: {
      ...process.env,
      EDGE_AGENT_DATA_DIR: dataDir,
      EDGE_AGENT_CONFIG_DIR: configDir,
      EDGE_AGENT_LOG_LEVEL: "debug",
      // The tests' platform sends unsigned commands; a test of signing sets a key (or "0" here).
      EDGE_AGENT_ALLOW_UNSIGNED: "1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    child.once("exit", (code, signal) => resolveExit({ code, signal })),
  );
  return {
    child,
    dataDir,
    configDir,
    exited,
    output: () => output,
    logs: () =>
      output
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    dispose: disposeAtFileEnd(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      if (root) await rm(root, { recursive: true, force: true });
    }),
  };
}
