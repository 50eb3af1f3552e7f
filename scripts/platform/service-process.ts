/**
 * One program the local platform runs (nats-server, a JVM, the bridge, an agent): started in a
 * process group of its own, so a Ctrl-C in the terminal reaches only `npm run platform`, which then
 * stops everything in order; its output appended to a log file of its own.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";

export interface ServiceSpec {
  /** How the platform names it in its lines (`nats-server`, `Kafka`, `agent local-1`). */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly logFile: string;
  /** How long a stop may take after SIGTERM before it is killed. */
  readonly stopTimeoutMs: number;
  /** An agent: stopped before the rest, so what it sends on the way out is still bridged. */
  readonly agent?: boolean;
}

export type ServiceExit = { readonly code: number | null; readonly signal: NodeJS.Signals | null };

export class ServiceProcess {
  readonly name: string;
  readonly logFile: string;
  readonly isAgent: boolean;
  readonly exited: Promise<ServiceExit>;
  private readonly child: ChildProcess;
  private readonly stopTimeoutMs: number;
  private exit: ServiceExit | null = null;
  private stopping = false;
  private readonly killOnExit = (): void => {
    this.signal("SIGKILL");
  };

  private constructor(spec: ServiceSpec, child: ChildProcess) {
    this.name = spec.name;
    this.logFile = spec.logFile;
    this.isAgent = spec.agent ?? false;
    this.child = child;
    this.stopTimeoutMs = spec.stopTimeoutMs;
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        process.off("exit", this.killOnExit);
        resolve(this.exit);
      });
      child.once("error", (error) => {
        this.exit = { code: null, signal: null };
        appendLine(spec.logFile, `[platform] could not start ${spec.command}: ${error.message}`);
        process.off("exit", this.killOnExit);
        resolve(this.exit);
      });
    });
    // Whatever ends this process (an uncaught error included), no server is left running.
    process.once("exit", this.killOnExit);
  }

  static start(spec: ServiceSpec): ServiceProcess {
    appendLine(
      spec.logFile,
      `[platform] ---- ${new Date().toISOString()} starting ${spec.command} ${spec.args.join(" ")}`,
    );
    const log = openSync(spec.logFile, "a");
    try {
      const child = spawn(spec.command, [...spec.args], {
        cwd: spec.cwd,
        env: spec.env,
        detached: true,
        stdio: ["ignore", log, log],
      });
      return new ServiceProcess(spec, child);
    } finally {
      closeSync(log);
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Null while it runs. */
  get exitStatus(): ServiceExit | null {
    return this.exit;
  }

  /** Whether it ended without being asked to. */
  get failed(): boolean {
    return this.exit !== null && !this.stopping;
  }

  /** SIGTERM, then SIGKILL after the spec's timeout; resolves with how it ended. */
  async stop(): Promise<ServiceExit & { readonly killed: boolean }> {
    this.stopping = true;
    if (this.exit) return { ...this.exit, killed: false };
    this.signal("SIGTERM");
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      this.signal("SIGKILL");
    }, this.stopTimeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return { ...exit, killed };
  }

  /** The last lines of its log, for a line saying why it failed. */
  logTail(lines = 15): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }

  private signal(signal: NodeJS.Signals): void {
    if (this.exit !== null || this.child.pid === undefined) return;
    try {
      // The whole group: a JVM's or npm's own children go with it.
      process.kill(-this.child.pid, signal);
    } catch {
      // Already gone.
    }
  }
}

export function appendLine(file: string, line: string): void {
  const fd = openSync(file, "a");
  try {
    writeSync(fd, `${line}\n`);
  } finally {
    closeSync(fd);
  }
}
