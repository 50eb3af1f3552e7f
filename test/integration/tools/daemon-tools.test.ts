import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startFileServer, TOOL_SCRIPT, toolZip } from "../../fixtures/tools/tool-kit.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { waitFor } from "../../helpers/wait-for.ts";

describe("the daemon installs tools", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let files: Awaited<ReturnType<typeof startFileServer>>;
  let agent: AgentProcess | undefined;

  beforeEach(async () => {
    server = await startNatsServer();
    expect((await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url })).code).toBe(0);
    operator = await connect({ servers: server.url });
    files = await startFileServer();
  });

  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
    await operator.close();
    await files.close();
    await server.dispose();
  });

  it("reports an install cut by kill -9 FAILED after the restart and never runs it again; sent again, it installs", async () => {
    const served = files.add("slow.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    const env = { EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_MACHINE_ID: "t1" };
    agent = await startAgentProcess(env);
    const { dataDir, configDir } = agent;
    const toolsDir = join(dataDir, "tools");
    const install = JSON.stringify({
      toolAgentId: "slowpoke",
      version: "1.0.0",
      downloadConfigurations: [
        { os: "linux", agentFileName: "bin/tool.sh", link: served.url, sha256: served.sha256, size: served.size },
      ],
      installationCommandArgs: ["slow", "1.0.0", "12"],
    });
    // The install's own reports (the tool's liveness reports carry a `connection` besides).
    const states = async (): Promise<Array<{ state: string; error: string | null }>> =>
      (await readStream(operator, "TOOL_STATUS"))
        .map((message) => message.body as { state: string; error: string | null; connection?: string | null })
        .filter((body) => body.connection === undefined || body.connection === null);
    await jetstream(operator).publish("machine.t1.tool-installation", install);
    // Under way as the platform sees it: its INSTALLING report is on the stream (the state file can say
    // INSTALLING a moment before the report is stored, and a kill in that moment leaves no report).
    await waitFor(
      "the install to be under way",
      async () => (await states()).some((status) => status.state === "INSTALLING"),
      20_000,
      20,
    );
    // Killed between applying the command and recording that it was: the next start does not apply
    // it again (a command that crashed the agent must not crash it for ever); it says so instead.
    await agent.stop("SIGKILL");
    agent = await startAgentProcess(env, { dataDir, configDir });
    const failed = await waitFor("the interrupted install reported", async () =>
      (await states()).find((status) => status.state === "FAILED"),
    );
    expect(failed.error).toMatch(/interrupted: the agent stopped unexpectedly .* it is not run again/);
    // Cleaned up: nothing of the cut install is left, and nothing was installed.
    await waitFor("the cut install cleaned up", () => !existsSync(join(toolsDir, "slowpoke")));
    expect(readFileSync(join(toolsDir, "slowpoke.state.json"), "utf8")).not.toMatch(/"INSTALLED"/);

    // The platform sends it again: it installs, once.
    await jetstream(operator).publish("machine.t1.tool-installation", install);
    await waitFor(
      "the install sent again to finish",
      () =>
        existsSync(join(toolsDir, "slowpoke.state.json")) &&
        readFileSync(join(toolsDir, "slowpoke.state.json"), "utf8").includes('"INSTALLED"'),
      40_000,
      100,
    );
    expect(readFileSync(join(toolsDir, "slowpoke", "bin", "marker"), "utf8")).toBe("installed 1.0.0\n");
    expect(readdirSync(toolsDir).sort()).toEqual(["slowpoke", "slowpoke.state.json"]);
    // The state file says INSTALLED as the reports go into the outbox: they reach the streams a
    // moment later (seconds on a loaded machine), so wait for them before reading them whole.
    await waitFor("the tool announced on INSTALLED_AGENTS", async () =>
      (await readStream(operator, "INSTALLED_AGENTS")).some(
        (message) => (message.body as { agentType: string }).agentType === "slowpoke",
      ),
    );
    await waitFor("its INSTALLED report stored", async () =>
      (await states()).some((status) => status.state === "INSTALLED"),
    );
    expect((await states()).map((status) => status.state)).toEqual([
      "DOWNLOADING",
      "INSTALLING",
      "FAILED",
      "DOWNLOADING",
      "INSTALLING",
      "INSTALLED",
    ]);

    const status = await runCli(["status"], { ...env, EDGE_AGENT_DATA_DIR: dataDir, EDGE_AGENT_CONFIG_DIR: configDir });
    expect(status.stdout).toMatch(/slowpoke 1\.0\.0 INSTALLED/);
  }, 90_000);
  it("stops promptly on SIGTERM while a tool's download hangs, and exits 0", async () => {
    const hanging = files.addHeld("hang.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    agent = await startAgentProcess({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_MACHINE_ID: "t1" });
    await jetstream(operator).publish(
      "machine.t1.tool-installation",
      JSON.stringify({
        toolAgentId: "hangs",
        version: "1.0.0",
        downloadConfigurations: [
          {
            os: "linux",
            agentFileName: "bin/tool.sh",
            link: hanging.served.url,
            sha256: hanging.served.sha256,
            size: hanging.served.size,
          },
        ],
      }),
    );
    await waitFor("the download to hang", () => hanging.requests === 1, 20_000);
    // The agent gives itself 5 s and then leaves with 1: exiting 0 means the download was aborted.
    expect(await agent.stop("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(agent.logs().map((line) => line.msg)).not.toContain("shutdown took too long: leaving now");
  }, 60_000);
});
