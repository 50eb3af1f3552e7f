import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { processAlive } from "../../../src/cli-kit/process-alive.ts";
import { lockDataDir, readLockHolder } from "../../../src/runtime/data-dir-lock.ts";
import { freeLoopbackPort } from "../../helpers/nats-server.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const root = resolve(import.meta.dirname, "../../..");

/**
 * The documented way to run from a checkout is npm (`npm start`, `npm run agent -- run`): a signal
 * to the process that was started, npm, must stop the agent cleanly, not leave it running orphaned
 * and holding its data dir.
 */
describe("the agent run through npm stops on a signal to npm", () => {
  const cases: ReadonlyArray<{ readonly args: readonly string[]; readonly signal: NodeJS.Signals }> = [
    { args: ["start"], signal: "SIGTERM" },
    { args: ["run", "agent", "--", "run"], signal: "SIGINT" },
  ];
  for (const { args, signal } of cases) {
    it(`npm ${args.join(" ")}, ${signal} to npm`, async () => {
      const dir = scratchDir("edge-agent-npm-");
      const dataDir = `${dir}/data`;
      // Nothing listens there: the agent runs offline, as on a laptop with no server.
      const natsUrl = `nats://127.0.0.1:${await freeLoopbackPort()}`;
      const npm: ChildProcess = spawn("npm", [...args], {
        cwd: root,
        env: {
          ...process.env,
          EDGE_AGENT_DATA_DIR: dataDir,
          EDGE_AGENT_CONFIG_DIR: `${dir}/config`,
          EDGE_AGENT_NATS_URL: natsUrl,
          EDGE_AGENT_MACHINE_ID: "npm-signal",
          // npm on a current Node turns on Node's compile cache in the temp dir; a test leaves nothing there.
          NODE_DISABLE_COMPILE_CACHE: "1",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      npm.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
      npm.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
      let agentPid: number | null = null;
      try {
        agentPid = await waitFor("the agent to hold its data dir", () => readLockHolder(dataDir) ?? undefined, 60_000);
        expect(agentPid).not.toBe(npm.pid);
        npm.kill(signal);
        await waitFor(
          `npm to exit; its output so far:\n${output}`,
          () => npm.exitCode !== null || npm.signalCode !== null,
          30_000,
        );
        const stoppedPid = agentPid;
        await waitFor("the agent to end", () => !processAlive(stoppedPid), 30_000);
        // Its last line, read from the pipe it shares with npm.
        await waitFor(
          `"edge-agent stopped" in the output:\n${output}`,
          () => output.includes("edge-agent stopped"),
          10_000,
        );
        // The data dir is free again: the next agent can take it.
        lockDataDir(dataDir, process.pid).release();
      } finally {
        if (npm.exitCode === null && npm.signalCode === null) npm.kill("SIGKILL");
        if (agentPid !== null && processAlive(agentPid)) process.kill(agentPid, "SIGKILL");
      }
    }, 120_000);
  }
});
