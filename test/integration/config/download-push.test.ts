import { existsSync, lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigStatus } from "../../../src/contracts/index.ts";
import { startFileServer, TOOL_SCRIPT, toolZip } from "../../fixtures/tools/tool-kit.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { waitFor } from "../../helpers/wait-for.ts";

describe("DownloadConfiguration pushes to a running agent", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let files: Awaited<ReturnType<typeof startFileServer>>;
  let agent: AgentProcess;

  const statuses = async (): Promise<ConfigStatus[]> =>
    (await readStream(operator, "CONFIG_STATUS")).map((message) => ConfigStatus.parse(message.body));
  const push = async (subject: string, list: unknown): Promise<void> => {
    await jetstream(operator).publish(subject, JSON.stringify(list));
  };

  beforeEach(async () => {
    server = await startNatsServer();
    expect((await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url })).code).toBe(0);
    operator = await connect({ servers: server.url });
    files = await startFileServer();
    agent = await startAgentProcess({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_MACHINE_ID: "p1" });
  });

  afterEach(async () => {
    await agent.dispose();
    await operator.close();
    await files.close();
    await server.dispose();
  });

  it("applies a pushed agent configuration document, refuses a stale revision and a bad checksum, and ignores fleet pushes for other OSes", async () => {
    const doc = files.add("agent.json", Buffer.from(JSON.stringify({ revision: 1, heartbeatSeconds: 2 })));
    await push("machine.p1.download-configuration", [
      { os: "windows", fileName: "agent.json", link: "https://example.invalid/agent.json" },
      { os: "linux", fileName: "agent.json", link: doc.url, sha256: doc.sha256, size: doc.size },
    ]);
    await waitFor(
      "APPLIED",
      async () => (await statuses()).some((status) => status.status === "APPLIED" && status.revision === 1),
      20_000,
    );
    const running = (await operator.request("machine.p1.rpc.config", "", { timeout: 3_000 })).json<{
      running: { heartbeatSeconds: number };
    }>();
    expect(running.running.heartbeatSeconds).toBe(2);

    await push("machine.all.download-configuration", {
      downloadConfigurations: [{ os: "macos", fileName: "agent.json", link: doc.url }],
    });
    await push("machine.p1.download-configuration", [
      { os: "linux", fileName: "agent.json", link: doc.url, sha256: doc.sha256 },
    ]);
    await push("machine.p1.download-configuration", [
      { os: "linux", fileName: "agent.json", link: doc.url, sha256: "f".repeat(64) },
    ]);
    const refused = await waitFor(
      "two refusals",
      async () => {
        const rejected = (await statuses()).filter((status) => status.status === "REJECTED");
        return rejected.length >= 2 ? rejected : undefined;
      },
      20_000,
    );
    expect(refused[0]?.error).toMatch(/revision 1 is not newer than the last pushed revision 1/);
    expect(refused[1]?.error).toMatch(/does not match the promised/);
    // The macOS-only fleet push changed nothing and said nothing.
    expect((await statuses()).length).toBe(3);
  });

  it("writes a pushed file into an installed tool's folder, and refuses one that would climb out of it", async () => {
    const tool = files.add("tool.zip", await toolZip({ "bin/tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
    await jetstream(operator).publish(
      "machine.p1.tool-installation",
      JSON.stringify({
        toolAgentId: "probe",
        version: "1",
        downloadConfigurations: [{ os: "linux", agentFileName: "bin/tool.sh", link: tool.url, sha256: tool.sha256 }],
      }),
    );
    const toolDir = join(agent.dataDir, "tools", "probe");
    await waitFor("the tool", () => existsSync(join(toolDir, "bin", "tool.sh")), 20_000);

    const ini = files.add("settings.ini", Buffer.from("[probe]\nserver=lab\n"));
    await push("machine.p1.download-configuration", [
      { os: "linux", agentFileName: "probe/conf/settings.ini", link: ini.url, sha256: ini.sha256 },
    ]);
    await waitFor("the file in place", () => existsSync(join(toolDir, "conf", "settings.ini")), 20_000);
    expect(readFileSync(join(toolDir, "conf", "settings.ini"), "utf8")).toBe("[probe]\nserver=lab\n");
    await waitFor("APPLIED", async () => (await statuses()).some((status) => status.status === "APPLIED"));

    await push("machine.p1.download-configuration", [
      { os: "linux", agentFileName: "probe/../../escape.ini", link: ini.url, sha256: ini.sha256 },
    ]);
    await push("machine.p1.download-configuration", [
      { os: "linux", agentFileName: "absent/x.ini", link: ini.url, sha256: ini.sha256 },
    ]);
    const refused = await waitFor(
      "two refusals",
      async () => {
        const rejected = (await statuses()).filter((status) => status.status === "REJECTED");
        return rejected.length >= 2 ? rejected : undefined;
      },
      20_000,
    );
    expect(refused[0]?.error).toMatch(/climbs out of its folder/);
    expect(refused[1]?.error).toMatch(/tool absent is not installed here/);
    expect(existsSync(join(agent.dataDir, "escape.ini"))).toBe(false);
  });

  it("refuses a pushed file whose path passes through a link the tool's installer made, naming the link", async () => {
    const outside = scratchDir("ea-outside-");
    // The installer links a folder of its own elsewhere, as real tools do with logs or caches.
    const linkingTool = `#!/bin/sh
here="$(cd "$(dirname "$0")" && pwd)"
ln -s "$2" "$here/out"
`;
    const tool = files.add("linking.zip", await toolZip({ "bin/tool.sh": { data: linkingTool, mode: 0o100755 } }));
    await jetstream(operator).publish(
      "machine.p1.tool-installation",
      JSON.stringify({
        toolAgentId: "symtool",
        version: "1",
        downloadConfigurations: [{ os: "linux", agentFileName: "bin/tool.sh", link: tool.url, sha256: tool.sha256 }],
        installationCommandArgs: ["install", outside],
      }),
    );
    const toolDir = join(agent.dataDir, "tools", "symtool");
    await waitFor("the tool and its link", () => existsSync(join(toolDir, "bin", "out")), 20_000);
    await waitFor(
      "INSTALLED",
      async () =>
        (await readStream(operator, "TOOL_STATUS")).some(
          (message) => (message.body as { state?: string }).state === "INSTALLED",
        ),
      20_000,
    );

    const payload = files.add("pwned.txt", Buffer.from("pwned\n"));
    await push("machine.p1.download-configuration", [
      { os: "linux", agentFileName: "symtool/bin/out/pwned.txt", link: payload.url, sha256: payload.sha256 },
    ]);
    await push("machine.p1.download-configuration", [
      { os: "linux", agentFileName: "symtool/bin/out", link: payload.url, sha256: payload.sha256 },
    ]);
    const refused = await waitFor(
      "two refusals",
      async () => {
        const rejected = (await statuses()).filter((status) => status.status === "REJECTED");
        return rejected.length >= 2 ? rejected : undefined;
      },
      20_000,
    );
    for (const status of refused)
      expect(status.error).toMatch(/"bin\/out" is a symbolic link .*: files are never written through a link/);
    expect(readdirSync(outside)).toEqual([]);
    expect(lstatSync(join(toolDir, "bin", "out")).isSymbolicLink()).toBe(true);
  });
});
