import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freeLoopbackPort } from "../../scripts/local-services/loopback.ts";
import { natsServerConfig, waitForNatsServer } from "../../scripts/local-services/nats-server-process.ts";
import { ensureNatsServer, selectedNatsServerVersion } from "../../scripts/nats-server-runtime.ts";
import { disposeAtFileEnd } from "./dispose-at-file-end.ts";

/**
 * Starts a real `nats-server -js` on a free loopback port with its own store directory: the
 * project's own copy of a current release (scripts/nats-server-runtime.ts; `EDGE_NATS_SERVER_VERSION`
 * picks another supported one, e.g. 2.10.27).
 * Each test gets its own server; `restart()` keeps the port and the JetStream store, so a test
 * can kill the broker and bring the same one back.
 */
export interface NatsServerHandle {
  readonly url: string;
  /** The server's version (e.g. `2.15.1`). */
  readonly version: string;
  readonly port: number;
  readonly storeDir: string;
  /** The running server's process id (benchmarks read its CPU and memory in /proc); undefined while stopped. */
  readonly pid: number | undefined;
  stop(): Promise<void>;
  /** kill -9, as a crash would. */
  kill(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  /**
   * Replaces the extra config lines and has the running server reload its config (SIGHUP), as an
   * operator granting a permission would: clients stay connected and get the new rules.
   */
  reload(configLines: readonly string[]): Promise<void>;
  dispose(): Promise<void>;
}

export interface NatsServerOptions {
  /** Extra lines for the server config file (e.g. `max_payload: 4096`, an `authorization` block). */
  readonly configLines?: readonly string[];
  /** How long a start may take to open the port (default 10 s); a server recovering many JetStream assets needs more. */
  readonly startTimeoutMs?: number;
}

/**
 * Two accounts, as a platform runs it: APP (user app/app, JetStream) for agents and bridges, and the
 * system account SYS (user sys/sys) whose connections see the server's own $SYS events.
 */
export const APP_AND_SYSTEM_ACCOUNTS: readonly string[] = [
  "accounts {",
  "  SYS: { users: [{ user: sys, password: sys }] }",
  "  APP: { jetstream: enabled, users: [{ user: app, password: app }] }",
  "}",
  "system_account: SYS",
];

export { freeLoopbackPort } from "../../scripts/local-services/loopback.ts";

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const version = selectedNatsServerVersion();
  const binary = await ensureNatsServer(version);
  const dir = await mkdtemp(join(tmpdir(), "edge-agent-nats-"));
  const port = await freeLoopbackPort();
  const storeDir = join(dir, "jetstream");
  const configPath = join(dir, "server.conf");
  const writeConfig = (configLines: readonly string[]): Promise<void> =>
    writeFile(configPath, natsServerConfig(port, storeDir, configLines));
  await writeConfig(options.configLines ?? []);
  let child: ChildProcess | undefined;
  let output = "";

  const start = async (): Promise<void> => {
    if (child) return;
    const proc = spawn(binary, ["-c", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    proc.stdout?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8192)));
    proc.stderr?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8192)));
    proc.once("exit", () => {
      if (child === proc) child = undefined;
    });
    try {
      await waitForNatsServer(port, options.startTimeoutMs ?? 10_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${output}`);
    }
  };

  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill(signal);
    await exited;
    child = undefined;
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    version,
    port,
    storeDir,
    get pid() {
      return child?.pid;
    },
    start,
    stop: () => terminate("SIGTERM"),
    kill: () => terminate("SIGKILL"),
    async restart() {
      await terminate("SIGTERM");
      await start();
    },
    async reload(configLines) {
      await writeConfig(configLines);
      const reloadsBefore = output.split("Reloaded server configuration").length;
      child?.kill("SIGHUP");
      const until = Date.now() + 10_000;
      while (output.split("Reloaded server configuration").length === reloadsBefore) {
        if (Date.now() > until) throw new Error(`nats-server did not reload its config within 10 s\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    dispose: disposeAtFileEnd(async () => {
      await terminate("SIGKILL");
      await rm(dir, { recursive: true, force: true });
    }),
  };
}
