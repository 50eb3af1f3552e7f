import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigStatus } from "../../../src/contracts/index.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { waitFor } from "../../helpers/wait-for.ts";

describe("`edge-agent config` keys, and the agent's side of them", () => {
  let server: NatsServerHandle;
  let observer: NatsConnection;
  let agent: AgentProcess | undefined;
  let scratch: string;
  let env: Record<string, string>;

  beforeEach(async () => {
    server = await startNatsServer();
    env = { EDGE_AGENT_NATS_URL: server.url };
    const setup = await runCli(["dev-setup"], env);
    expect(setup.code, setup.stderr).toBe(0);
    observer = await connect({ servers: server.url });
    scratch = mkdtempSync(join(tmpdir(), "edge-agent-config-cli-"));
  });
  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
    await observer.close();
    await server.dispose();
    rmSync(scratch, { recursive: true, force: true });
  });

  const documentOf = async (machine: string): Promise<unknown> => {
    const get = await runCli(["config", "get", "--machine", machine], env);
    expect(get.code, get.stderr).toBe(0);
    return get.stdout.startsWith("(no document)") ? null : (JSON.parse(get.stdout) as { document: unknown }).document;
  };

  it("refuses an unknown key with the closest one (exit 2), and a local-only one as such; nothing is written", async () => {
    const typo = await runCli(["config", "set", "--machine", "m1", "heartbeatSecs", "5"], env);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(
      /^edge-agent: unknown setting "heartbeatSecs": did you mean "heartbeatSeconds"\? \(settings: /,
    );
    const local = await runCli(["config", "set", "natsUrl", "nats://elsewhere:4222"], env);
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/"natsUrl" is a local setting of each machine/);
    const unset = await runCli(["config", "unset", "--machine", "m1", "hearbeatSeconds"], env);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toMatch(/did you mean "heartbeatSeconds"\?/);
    const file = join(scratch, "typo.json");
    writeFileSync(file, JSON.stringify({ heartbeatSeconds: 5, outbox: { maxByte: 1024 } }));
    const push = await runCli(["config", "push", "--machine", "m1", file], env);
    expect(push.code).toBe(2);
    expect(push.stderr).toMatch(/unknown setting "outbox\.maxByte": did you mean "outbox\.maxBytes"\?/);
    expect(await documentOf("m1")).toBeNull();
  });

  it("`config set tags site=lab,rack=4` as the environment takes it, `config unset` removes a key", async () => {
    const set = await runCli(["config", "set", "--machine", "m2", "tags", "site=lab,rack=4"], env);
    expect(set.code, set.stderr).toBe(0);
    const heartbeat = await runCli(["config", "set", "--machine", "m2", "heartbeatSeconds", "30"], env);
    expect(heartbeat.code, heartbeat.stderr).toBe(0);
    expect(await documentOf("m2")).toEqual({ tags: { site: "lab", rack: "4" }, heartbeatSeconds: 30 });

    const unset = await runCli(["config", "unset", "--machine", "m2", "tags"], env);
    expect(unset.code, unset.stderr).toBe(0);
    expect(unset.stdout).toMatch(/^machine\.m2: revision \d+/);
    expect(await documentOf("m2")).toEqual({ heartbeatSeconds: 30 });
    const nothing = await runCli(["config", "unset", "--machine", "m2", "logLevel"], env);
    expect(nothing.code, nothing.stderr).toBe(0);
    expect(nothing.stdout).toBe("logLevel is not set in machine.m2: nothing written\n");
  });

  it("the agent reports REJECTED for a document with an unknown key written by anyone, and keeps what it runs", async () => {
    agent = await startAgentProcess({ ...env, EDGE_AGENT_MACHINE_ID: "cfg-1" });
    const running = agent;
    await waitFor("connected", () => running.logs().some((line) => line.msg === "connected to NATS"), 20_000);
    const kv = await new Kvm(observer).open("agent-config");
    await kv.put("machine.cfg-1", JSON.stringify({ heartbeatSecs: 5 }));
    const rejected = await waitFor(
      "config.status REJECTED",
      async () =>
        (await readStream(observer, "CONFIG_STATUS"))
          .map((message) => ConfigStatus.parse(message.body))
          .find((body) => body.status === "REJECTED"),
      20_000,
    );
    expect(rejected.error).toMatch(/unknown setting "heartbeatSecs": did you mean "heartbeatSeconds"\?/);
    const status = await runCli(["status", "--json"], {
      ...env,
      EDGE_AGENT_MACHINE_ID: "cfg-1",
      EDGE_AGENT_DATA_DIR: running.dataDir,
      EDGE_AGENT_CONFIG_DIR: running.configDir,
    });
    expect(JSON.parse(status.stdout).status).toMatchObject({
      heartbeatSeconds: 60,
      capabilities: { config: { lastStatus: { status: "REJECTED" } } },
    });
  }, 60_000);
});
