/**
 * Where the local platform keeps its state: one directory (`.platform/` in the repository unless
 * `--state-dir` says otherwise) holding every server's data, the logs, the ports chosen on the first
 * run (a second run must use the same: Kafka's quorum and Pinot's instance names carry them) and the
 * pids of what runs, so a run that was killed is cleaned up by the next.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as z from "zod";
import {
  type DataDirLock,
  DataDirLockedError,
  LOCK_FILE,
  lockDataDir,
  PID_FILE,
} from "../../src/runtime/data-dir-lock.ts";
import { PlatformError } from "./platform-error.ts";

export const PlatformPorts = z.object({
  nats: z.number().int(),
  kafka: z.number().int(),
  kafkaController: z.number().int(),
  pinotZooKeeper: z.number().int(),
  pinotController: z.number().int(),
  pinotBroker: z.number().int(),
  pinotServerQuery: z.number().int(),
  pinotServerAdmin: z.number().int(),
});
export type PlatformPorts = z.infer<typeof PlatformPorts>;

const StateFile = z.object({ version: z.literal(1), ports: PlatformPorts });

const RunningProcess = z.object({ name: z.string(), pid: z.number().int().positive() });
const ProcessesFile = z.array(RunningProcess);
export type RunningProcess = z.infer<typeof RunningProcess>;

export class PlatformState {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  get logsDir(): string {
    return this.path("logs");
  }

  private get stateFile(): string {
    return this.path("state.json");
  }

  private get processesFile(): string {
    return this.path("processes.json");
  }

  /** Whether a run left state here (a second run reuses it). */
  exists(): boolean {
    return existsSync(this.stateFile);
  }

  /**
   * Empties the directory for a fresh start. Refused for a directory that is not empty and holds no
   * platform state: `--state-dir` naming the wrong directory must not cost its files.
   */
  wipe(): void {
    if (!existsSync(this.dir)) return;
    const entries = readdirSync(this.dir);
    if (entries.length > 0 && !this.exists())
      throw new PlatformError(
        `${this.dir} is not empty and holds no platform state (no state.json): not removing it; give an empty or new --state-dir`,
      );
    // The lock stays: this run holds it, and a new file would let a second run in beside it.
    for (const entry of entries.filter((name) => name !== LOCK_FILE && name !== PID_FILE))
      rmSync(join(this.dir, entry), { recursive: true, force: true });
  }

  /** One platform per state dir: the kernel's lock, released however this process ends. */
  lock(): DataDirLock {
    mkdirSync(this.dir, { recursive: true });
    try {
      return lockDataDir(this.dir, process.pid);
    } catch (error) {
      if (error instanceof DataDirLockedError)
        throw new PlatformError(
          `another npm run platform (${error.holderPid === null ? "pid not known" : `pid ${error.holderPid}`}) uses ${this.dir}: stop it first (Ctrl-C in its terminal)`,
          { cause: error },
        );
      throw error;
    }
  }

  readPorts(): PlatformPorts | null {
    if (!this.exists()) return null;
    const parsed = StateFile.safeParse(JSON.parse(readFileSync(this.stateFile, "utf8")));
    if (!parsed.success)
      throw new PlatformError(
        `${this.stateFile} is damaged (${parsed.error.issues[0]?.message}): start over with --fresh`,
      );
    return parsed.data.ports;
  }

  writePorts(ports: PlatformPorts): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.stateFile, `${JSON.stringify({ version: 1, ports }, null, 2)}\n`);
  }

  /** What a run that did not stop cleanly may have left running. */
  readProcesses(): RunningProcess[] {
    try {
      return ProcessesFile.parse(JSON.parse(readFileSync(this.processesFile, "utf8")));
    } catch {
      return [];
    }
  }

  writeProcesses(processes: readonly RunningProcess[]): void {
    if (processes.length === 0) rmSync(this.processesFile, { force: true });
    else writeFileSync(this.processesFile, `${JSON.stringify(processes, null, 2)}\n`);
  }
}
