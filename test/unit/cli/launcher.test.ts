import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LAUNCHER_ENV, launchInstalledVersion } from "../../../src/cli/launcher.ts";
import { createLogger } from "../../../src/runtime/logger.ts";
import {
  binaryPathFor,
  EMPTY_UPDATE_STATE,
  readUpdateState,
  type UpdateState,
  updatePaths,
  writeUpdateState,
} from "../../../src/update/update-state.ts";

const logger = createLogger({ level: "silent" });
let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "edge-launcher-"));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

const NOW = Date.parse("2026-11-23T10:00:00.000Z");
async function stageTrial(version: string, contents = "binary"): Promise<UpdateState> {
  const paths = updatePaths(dataDir);
  const path = binaryPathFor(paths, version);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, contents, { mode: 0o755 });
  const state: UpdateState = {
    ...EMPTY_UPDATE_STATE,
    trial: {
      version,
      path,
      sha256: "b".repeat(64),
      size: Buffer.byteLength(contents),
      startedAt: new Date(NOW).toISOString(),
      launches: 0,
      previous: null,
      fromVersion: "1.0.0",
      causationId: null,
    },
  };
  await writeUpdateState(paths, state);
  return state;
}

describe("the launcher in `edge-agent run`", () => {
  it("hands the process to the trial with the same arguments and says who launched it", async () => {
    await stageTrial("1.1.0");
    const calls: Array<{ file: string; args: readonly string[]; env: NodeJS.ProcessEnv }> = [];
    const handedOver = new Promise<void>((resolve) => {
      void launchInstalledVersion({
        dataDir,
        selfVersion: "1.0.0",
        args: ["run", "--log-level", "debug"],
        logger,
        now: () => NOW + 1_000,
        exec: (file, args, env) => {
          calls.push({ file, args, env });
          resolve();
          return new Promise<never>(() => undefined);
        },
      });
    });
    await handedOver;
    expect(calls[0]?.file).toBe(binaryPathFor(updatePaths(dataDir), "1.1.0"));
    expect(calls[0]?.args).toEqual(["run", "--log-level", "debug"]);
    expect(JSON.parse(calls[0]?.env[LAUNCHER_ENV] ?? "[]")).toContain(process.execPath);
    // The start is counted on disk before the trial runs.
    expect((await readUpdateState(updatePaths(dataDir))).trial?.launches).toBe(1);
  });

  it("rolls back at once when the trial cannot even start (wrong format), and runs the packaged binary", async () => {
    await stageTrial("1.1.0");
    await launchInstalledVersion({
      dataDir,
      selfVersion: "1.0.0",
      args: ["run"],
      logger,
      now: () => NOW + 1_000,
      exec: () => Promise.reject(new Error("ENOEXEC, Exec format error")),
    });
    const state = await readUpdateState(updatePaths(dataDir));
    expect(state.trial).toBeNull();
    expect(state.rolledBack[0]?.reason).toMatch(/Exec format error/);
    expect(state.pendingReports[0]?.body.state).toBe("ROLLED_BACK");
  });

  it("refuses a binary changed on disk since it was verified", async () => {
    await stageTrial("1.1.0");
    await writeFile(binaryPathFor(updatePaths(dataDir), "1.1.0"), "tampered with, longer");
    let ran = false;
    await launchInstalledVersion({
      dataDir,
      selfVersion: "1.0.0",
      args: ["run"],
      logger,
      now: () => NOW + 1_000,
      exec: () => {
        ran = true;
        return new Promise<never>(() => undefined);
      },
    });
    expect(ran).toBe(false);
    expect((await readUpdateState(updatePaths(dataDir))).rolledBack[0]?.reason).toMatch(
      /not the 6 it had when verified/,
    );
  });

  it("runs the packaged binary when the update state is damaged, and leaves the file for a person to read", async () => {
    await mkdir(updatePaths(dataDir).root, { recursive: true });
    await writeFile(updatePaths(dataDir).stateFile, "{ not json");
    await launchInstalledVersion({
      dataDir,
      selfVersion: "1.0.0",
      args: ["run"],
      logger,
      exec: () => Promise.reject(new Error("must not run")),
    });
    expect(await readFile(updatePaths(dataDir).stateFile, "utf8")).toBe("{ not json");
  });

  it("does nothing in a process a launcher started", async () => {
    await stageTrial("1.1.0");
    process.env[LAUNCHER_ENV] = JSON.stringify(["/usr/bin/edge-agent"]);
    try {
      await launchInstalledVersion({
        dataDir,
        selfVersion: "1.1.0",
        args: ["run"],
        logger,
        exec: () => Promise.reject(new Error("must not run")),
      });
    } finally {
      delete process.env[LAUNCHER_ENV];
    }
    expect((await readUpdateState(updatePaths(dataDir))).trial?.launches).toBe(0);
  });
});
