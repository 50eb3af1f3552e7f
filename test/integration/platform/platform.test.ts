import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { waitFor } from "../../helpers/wait-for.ts";

const root = resolve(import.meta.dirname, "../../..");
/** Bounds a start that never comes up; a warm start takes 25-70 s on a busy 2-core machine. */
const READY_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 90_000;

/** Pids whose command line names `text` (the platform's programs all name its state dir). */
function pidsNaming(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(text)) pids.push(Number(entry));
    } catch {
      // Ended meanwhile.
    }
  }
  return pids.filter((pid) => pid !== process.pid);
}

interface PlatformRun {
  readonly npm: ChildProcess;
  output(): string;
  readonly exited: Promise<number | null>;
}

function startPlatform(stateDir: string): PlatformRun {
  const npm = spawn("npm", ["run", "platform", "--", "--state-dir", stateDir, "--any-ports"], {
    cwd: root,
    // npm on a current Node turns on Node's compile cache in the temp dir; a test leaves nothing there.
    env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  npm.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => npm.once("exit", (code) => resolveExit(code)));
  return { npm, output: () => output, exited };
}

async function waitForLine(run: PlatformRun, text: string, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  await waitFor(
    `${JSON.stringify(text)} from npm run platform; it printed:\n${run.output()}`,
    () => {
      if (run.npm.exitCode !== null) throw new Error(`npm run platform exited ${run.npm.exitCode}:\n${run.output()}`);
      return run.output().includes(text);
    },
    timeoutMs,
    250,
  );
}

describe("npm run platform: the whole data path on this machine in one command", () => {
  const stateDir = mkdtempSync(join(tmpdir(), "edge-platform-"));
  afterAll(() => {
    // Whatever a failed run left: only programs of this test's state dir.
    for (const pid of pidsNaming(stateDir)) process.kill(pid, "SIGKILL");
    rmSync(stateDir, { recursive: true, force: true });
  });

  it(
    "starts every part, a device row is queryable in Pinot and readable in Kafka, and a signal to npm stops everything",
    async () => {
      const run = startPlatform(stateDir);
      await waitForLine(run, "The platform runs; the first device row was queryable in Pinot");

      const brokerUrl = /curl -s (http:\/\/127\.0\.0\.1:\d+)\/query\/sql/.exec(run.output())?.[1];
      expect(brokerUrl, run.output()).toBeDefined();
      const answer = (await (
        await fetch(`${brokerUrl}/query/sql`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ sql: "SELECT machineId, status, osType FROM devices WHERE machineId = 'local-1'" }),
        })
      ).json()) as { resultTable: { rows: unknown[][] } };
      expect(answer.resultTable.rows).toEqual([["local-1", "ONLINE", "LINUX"]]);

      // The command it prints to read a topic works as printed.
      const tail = /^ {2}(npm run -s bridge -- tail devices-topic .*)$/m.exec(run.output())?.[1];
      expect(tail, run.output()).toBeDefined();
      const records = execFileSync("sh", ["-c", tail as string], {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, NODE_DISABLE_COMPILE_CACHE: "1" },
      })
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { key: string; value: { machineId: string } });
      expect(records.some((record) => record.key === "local-1" && record.value.machineId === "local-1")).toBe(true);

      // One platform per state dir: a second is refused, in one line, touching nothing.
      const second = startPlatform(stateDir);
      expect(await second.exited).toBe(1);
      expect(second.output()).toMatch(/edge platform: another npm run platform \(pid \d+\) uses /);

      run.npm.kill("SIGINT");
      expect(await run.exited, run.output()).toBe(0);
      expect(run.output()).toContain("The platform stopped.");
      expect(pidsNaming(stateDir)).toEqual([]);
    },
    READY_TIMEOUT_MS + STOP_TIMEOUT_MS,
  );

  it(
    "a second run reuses the state; a run killed with -9 leaves programs that the next run stops first",
    async () => {
      const killed = startPlatform(stateDir);
      await waitForLine(killed, "Reusing the platform's state");
      await waitForLine(killed, "started (logs in");
      const platformPid = pidsNaming("scripts/platform.ts").find((pid) =>
        readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(stateDir),
      );
      expect(platformPid).toBeDefined();
      process.kill(platformPid as number, "SIGKILL");
      await killed.exited;
      // nats-server, Kafka, Pinot and the agent outlive it: each runs in a process group of its own.
      expect(pidsNaming(stateDir).length).toBeGreaterThan(0);

      const next = startPlatform(stateDir);
      await waitForLine(next, "The platform runs; the first device row was queryable in Pinot");
      expect(next.output()).toMatch(/is still running from a platform that did not stop cleanly: stopping it/);
      expect(next.output()).toContain("edge-bridge pinot-setup: tables unchanged");
      next.npm.kill("SIGTERM");
      expect(await next.exited, next.output()).toBe(0);
      expect(pidsNaming(stateDir)).toEqual([]);
    },
    2 * READY_TIMEOUT_MS + STOP_TIMEOUT_MS,
  );
});
