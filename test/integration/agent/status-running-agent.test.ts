import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Agent, createAgent } from "../../../src/agent/create-agent.ts";
import { type AgentStatus, STATUS_FILE } from "../../../src/agent/status.ts";
import { MACHINE_ID_FILE } from "../../../src/identity/machine-id.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { loadSettings } from "../../../src/settings/index.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { manualClock } from "../../helpers/manual-clock.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { waitFor } from "../../helpers/wait-for.ts";

describe("status and doctor ask the agent that runs, as it runs", () => {
  let server: NatsServerHandle;
  let agent: AgentProcess | undefined;

  beforeEach(async () => {
    server = await startNatsServer();
    const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url });
    expect(setup.code, setup.stderr).toBe(0);
  });

  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
    await server.dispose();
  });

  it("status asks the machine id the running agent uses, not one an earlier run generated in the data dir", async () => {
    const root = scratchDir("edge-agent-status-id-");
    const dirs = { dataDir: join(root, "data"), configDir: join(root, "config") };
    // An earlier run without a machine id generated one and kept it in the data dir.
    mkdirSync(dirs.dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dirs.dataDir, MACHINE_ID_FILE), "generated-earlier\n", { mode: 0o600 });
    agent = await startAgentProcess({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_MACHINE_ID: "lab-pc-1" }, dirs);
    // A plain `status`: the operator's shell does not have the agent's EDGE_AGENT_MACHINE_ID.
    const env = {
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_DATA_DIR: dirs.dataDir,
      EDGE_AGENT_CONFIG_DIR: dirs.configDir,
    };
    const report = await waitFor(
      "status to answer from the running agent, connected",
      async () => {
        const result = await runCli(["status", "--json"], env);
        if (result.code !== 0) return undefined;
        const parsed = JSON.parse(result.stdout) as { source: string; status: AgentStatus };
        return parsed.status.connection.state === "connected" ? parsed : undefined;
      },
      30_000,
      500,
    );
    expect(report.source).toBe("live");
    expect(report.status.machineId).toBe("lab-pc-1");

    // The settings may name another id (a settings file): the running agent's still wins, and it says so.
    const named = await runCli(["status"], { ...env, EDGE_AGENT_MACHINE_ID: "generated-earlier" });
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout).toContain("machine lab-pc-1");
    expect(named.stdout).toContain("live answer from the running agent");
    expect(named.stdout).toContain("machine id: the running agent's machine id (these settings say generated-earlier)");

    const doctor = await runCli(["doctor", "--json"], env, 30_000);
    const checks = doctor.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { check: string; reason: string });
    expect(checks.find((check) => check.check === "machine id")?.reason).toBe("lab-pc-1");
  });

  it("the status file says the link's new state at once, not at its next 10 s rewrite", async () => {
    const root = scratchDir("edge-agent-status-file-");
    const { settings } = loadSettings({
      env: {
        EDGE_AGENT_NATS_URL: server.url,
        EDGE_AGENT_MACHINE_ID: "sf-1",
        EDGE_AGENT_DATA_DIR: join(root, "data"),
        EDGE_AGENT_CONFIG_DIR: join(root, "config"),
      },
      platform: "linux",
      privileged: false,
    });
    // Time stands still: the file's periodic rewrite never comes, so only a link change writes it.
    const clock = manualClock();
    const inProcess: Agent = await createAgent(settings, {
      clock,
      logger: silentLogger(),
      telemetry: false,
      writeStatusFile: true,
    });
    const fileState = (): string =>
      (JSON.parse(readFileSync(join(settings.dataDir, STATUS_FILE), "utf8")) as AgentStatus).connection.state;
    try {
      await inProcess.start();
      await waitFor("the status file to say connected", () => fileState() === "connected", 20_000);
      await server.stop();
      await waitFor("the status file to say disconnected", () => fileState() === "disconnected", 20_000);
    } finally {
      await inProcess.stop();
    }
  });
});
