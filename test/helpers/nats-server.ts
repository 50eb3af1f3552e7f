import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { natsServerConfig } from "../../scripts/local-services/nats-server-process.ts";
import { ensureNatsServer, selectedNatsServerVersion } from "../../scripts/nats-server-runtime.ts";
import { disposeAtFileEnd } from "./dispose-at-file-end.ts";
import { listeningSocketsOf } from "./listening-sockets.ts";
import { claimLoopbackPort, type PortClaim } from "./loopback-ports.ts";
import { waitFor } from "./wait-for.ts";

export { freeLoopbackPort } from "./loopback-ports.ts";

/**
 * Starts a real `nats-server -js` on a free loopback port with its own store directory: the
 * project's own copy of a current release (scripts/nats-server-runtime.ts; `EDGE_NATS_SERVER_VERSION`
 * picks another supported one, e.g. 2.10.27).
 * Each test gets its own server; `restart()` keeps the port and the JetStream store, so a test
 * can kill the broker and bring the same one back.
 *
 * Guarantee: once `startNatsServer`, `start()` or `restart()` resolves, the port is listened on by
 * this handle's own nats-server process (read from /proc), never by another that happens to hold
 * it. The port stays claimed (loopback-ports.ts) from the first start to `dispose()`, so no other
 * test's server is given it while this one is down.
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
  /** Which release to run (one scripts/nats-server-runtime.ts fetches); default: `EDGE_NATS_SERVER_VERSION`, else the current one. */
  readonly version?: string;
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

/** Thrown when a nats-server does not come up; the message carries the end of its output. */
export class NatsServerStartError extends Error {
  readonly code = "EDGE_TEST_NATS_SERVER_START";
  override readonly name = "NatsServerStartError";
  /** Its process ended without listening because another process holds its port. */
  readonly portTaken: boolean;
  constructor(message: string, portTaken: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.portTaken = portTaken;
  }
}

/** Whether this process could bind `port` on loopback now (as nats-server would, address reuse on). */
function portBindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.unref();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/**
 * Waits until `proc` itself listens on `port`. A connect to the port would not tell: another
 * process may hold it, and then nats-server exits ("address already in use") while the port answers.
 */
async function untilListening(
  proc: ChildProcess,
  port: number,
  deadlineMs: number,
  output: () => string,
): Promise<void> {
  let exit: string | null = null;
  const exited = (code: number | null, signal: NodeJS.Signals | null): void => {
    exit = signal ?? `code ${code}`;
  };
  // "close", not "exit": by then its last words ("address already in use") are in the output.
  proc.once("close", exited);
  try {
    const outcome = await waitFor(
      `nats-server to listen on port ${port}`,
      async (): Promise<{ exited: string } | "listening" | undefined> => {
        if (exit !== null) return { exited: exit };
        const pid = proc.pid;
        // The process may end between two reads of /proc: the next turn sees its exit.
        const sockets = pid === undefined ? [] : await listeningSocketsOf(pid).catch(() => []);
        return sockets.some((socket) => socket.port === port) ? "listening" : undefined;
      },
      deadlineMs,
      50,
    ).catch((error: unknown) => {
      throw new NatsServerStartError(
        `nats-server did not listen on port ${port} within ${deadlineMs} ms\n${output()}`,
        false,
        {
          cause: error,
        },
      );
    });
    if (outcome !== "listening") {
      const portTaken = !(await portBindable(port));
      const why = portTaken ? `port ${port} is held by another process` : `it exited (${outcome.exited})`;
      throw new NatsServerStartError(`nats-server did not start: ${why}\n${output()}`, portTaken);
    }
  } finally {
    proc.off("close", exited);
  }
}

/** A first start whose port turns out taken moves to another port: nobody knows this one yet. */
const FIRST_START_ATTEMPTS = 3;

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const version = options.version ?? selectedNatsServerVersion();
  const binary = await ensureNatsServer(version);
  const dir = await mkdtemp(join(tmpdir(), "edge-agent-nats-"));
  let claim: PortClaim = await claimLoopbackPort();
  const storeDir = join(dir, "jetstream");
  const configPath = join(dir, "server.conf");
  let configLines = options.configLines ?? [];
  const writeConfig = (): Promise<void> => writeFile(configPath, natsServerConfig(claim.port, storeDir, configLines));
  let child: ChildProcess | undefined;
  let output = "";
  // Set while this handle ends its own process: any other exit is a crash worth telling.
  let ending = false;

  const start = async (): Promise<void> => {
    if (child) return;
    const proc = spawn(binary, ["-c", configPath], { stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    proc.stdout?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8192)));
    proc.stderr?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-8192)));
    let up = false;
    proc.once("exit", (code, signal) => {
      if (child !== proc) return;
      child = undefined;
      // Told once its output is complete: a test that then meets "connection refused" knows why.
      if (up && !ending)
        proc.once("close", () =>
          console.warn(`nats-server on port ${claim.port} exited by itself (${signal ?? `code ${code}`})\n${output}`),
        );
    });
    try {
      await untilListening(proc, claim.port, options.startTimeoutMs ?? 10_000, () => output);
      up = true;
    } catch (error) {
      await terminate("SIGKILL");
      throw error;
    }
  };

  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc) return;
    ending = true;
    try {
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      proc.kill(signal);
      await exited;
    } finally {
      ending = false;
    }
    child = undefined;
  };

  const firstStart = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      await writeConfig();
      try {
        return await start();
      } catch (error) {
        if (!(error instanceof NatsServerStartError && error.portTaken) || attempt === FIRST_START_ATTEMPTS)
          throw error;
        await claim.release();
        claim = await claimLoopbackPort();
        output = "";
      }
    }
  };
  try {
    await firstStart();
  } catch (error) {
    await claim.release();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const port = claim.port;
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
    async reload(lines) {
      configLines = lines;
      await writeConfig();
      const reloadsBefore = output.split("Reloaded server configuration").length;
      child?.kill("SIGHUP");
      await waitFor(
        "nats-server to reload its config",
        () => output.split("Reloaded server configuration").length > reloadsBefore,
        10_000,
        50,
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${output}`, { cause: error });
      });
    },
    dispose: disposeAtFileEnd(async () => {
      await terminate("SIGKILL");
      await rm(dir, { recursive: true, force: true });
      await claim.release();
    }),
  };
}
