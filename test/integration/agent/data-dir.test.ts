import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { freeLoopbackPort } from "../../helpers/nats-server.ts";
import { canMountTmpfs, mountTmpfs, TMPFS_SKIP_REASON, type TmpfsHandle } from "../../helpers/tmpfs.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/** The agent works offline: a loopback port nobody listens on is all the NATS it needs here. */
async function offlineEnv(machineId: string): Promise<Record<string, string>> {
  return { EDGE_AGENT_NATS_URL: `nats://127.0.0.1:${await freeLoopbackPort()}`, EDGE_AGENT_MACHINE_ID: machineId };
}

const started = (agent: AgentProcess): Promise<unknown> =>
  waitFor(
    "the agent to start",
    () => agent.logs().some((line) => line.msg === "edge-agent starting") || agent.child.exitCode !== null,
  );

describe("the data dir of `edge-agent run`", () => {
  const agents: AgentProcess[] = [];
  const roots: string[] = [];
  let tmpfs: TmpfsHandle | null = null;
  const dirs = (root: string): { dataDir: string; configDir: string } => ({
    dataDir: join(root, "data"),
    configDir: join(root, "config"),
  });

  afterEach(async () => {
    for (const agent of agents.splice(0)) await agent.dispose();
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
    tmpfs?.free();
  });
  afterAll(() => tmpfs?.unmount());

  it("belongs to one agent: a second refuses to start naming the first's pid (exit 3); a killed one's lock is free at once", async () => {
    const root = mkdtempSync(join(tmpdir(), "edge-agent-lock-"));
    roots.push(root);
    const env = await offlineEnv("lock-1");
    const first = await startAgentProcess(env, dirs(root));
    agents.push(first);
    await started(first);

    const second = await startAgentProcess(env, dirs(root));
    agents.push(second);
    expect(await second.exited).toEqual({ code: 3, signal: null });
    expect(second.output()).toContain(`is in use by another edge-agent (pid ${first.child.pid})`);
    expect(first.child.exitCode).toBeNull();

    // kill -9 leaves no lock behind: the kernel drops it with the process.
    first.child.kill("SIGKILL");
    await first.exited;
    const third = await startAgentProcess(env, dirs(root));
    agents.push(third);
    await started(third);
    expect(third.child.exitCode).toBeNull();
    // `status` only reads: it works beside the running agent and takes nothing.
    const status = await runCli(["status", "--json"], {
      ...env,
      EDGE_AGENT_DATA_DIR: third.dataDir,
      EDGE_AGENT_CONFIG_DIR: third.configDir,
    });
    expect(status.code, status.stderr).toBe(0);
    expect(third.child.exitCode).toBeNull();

    // A clean stop releases it and removes the pid file.
    expect(await third.stop("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(existsSync(join(third.dataDir, "agent.pid"))).toBe(false);
    const fourth = await startAgentProcess(env, dirs(root));
    agents.push(fourth);
    await started(fourth);
    expect(fourth.child.exitCode).toBeNull();
  });

  it.skipIf(!canMountTmpfs())(
    `on a full disk: \`status\` says the file is stale and why, and no temporary files pile up (${TMPFS_SKIP_REASON})`,
    async () => {
      tmpfs = mountTmpfs(4 * 1024 * 1024);
      const root = (tmpfs as TmpfsHandle).dir;
      const env = await offlineEnv("full-1");
      const agent = await startAgentProcess(env, dirs(root));
      agents.push(agent);
      await waitFor("the first status file", () => existsSync(join(agent.dataDir, "status.json")));
      tmpfs?.fill();
      const writeFailures = (level: string): number =>
        agent
          .logs()
          .filter((line) => line.level === level && String(line.msg).startsWith("cannot write the status file")).length;
      await waitFor("a failed status write", () => writeFailures("error") > 0, 25_000);

      // As if it had failed for two minutes (setting the time needs no free space).
      const twoMinutesAgo = new Date(Date.now() - 120_000);
      utimesSync(join(agent.dataDir, "status.json"), twoMinutesAgo, twoMinutesAgo);
      const status = await runCli(["status"], {
        ...env,
        EDGE_AGENT_DATA_DIR: agent.dataDir,
        EDGE_AGENT_CONFIG_DIR: agent.configDir,
      });
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(
        new RegExp(
          `warning: {4}the status file is 2m( \\ds)? old \\(the agent rewrites it every 10s\\): the agent \\(pid ${agent.child.pid}\\) runs but cannot write it: the data dir's file system is full \\(ENOSPC`,
        ),
      );

      // Retried every 10 s: one error line when it started, the repeats only at debug level.
      await waitFor("a second failed status write", () => writeFailures("debug") > 0, 25_000);
      expect(writeFailures("error")).toBe(1);
      expect(readdirSync(agent.dataDir).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    },
    60_000,
  );
});
