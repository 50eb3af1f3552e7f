import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { afterEach, describe, expect, it } from "vitest";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

interface LocalStatus {
  readonly source: string;
  readonly status: { readonly connection: { readonly state: string; readonly lastError?: string | null } };
}

describe("the agent's link under refusals", () => {
  let server: NatsServerHandle | undefined;
  let agent: AgentProcess | undefined;
  let scratch: string | undefined;

  afterEach(async () => {
    await agent?.dispose();
    agent = undefined;
    await server?.dispose();
    server = undefined;
    if (scratch) await rm(scratch, { recursive: true, force: true });
    scratch = undefined;
  });

  const localStatus = async (running: AgentProcess): Promise<LocalStatus | undefined> => {
    const result = await runCli(["status", "--json"], {
      EDGE_AGENT_DATA_DIR: running.dataDir,
      EDGE_AGENT_CONFIG_DIR: running.configDir,
      EDGE_AGENT_NATS_URL: "nats://127.0.0.1:1",
    });
    return result.code === 0 ? (JSON.parse(result.stdout) as LocalStatus) : undefined;
  };

  it("keeps retrying a first connection refused for its credentials, shows why in status, and connects once the credentials are rotated", async () => {
    const admitted = createUser();
    const refused = createUser();
    server = await startNatsServer({
      configLines: [`authorization { users = [ { nkey: "${admitted.getPublicKey()}" } ] }`],
    });
    scratch = await mkdtemp(join(tmpdir(), "edge-agent-link-"));
    const seedFile = join(scratch, "agent.nk");
    await writeFile(seedFile, new TextDecoder().decode(refused.getSeed()), { mode: 0o600 });
    agent = await startAgentProcess({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "link-1",
      EDGE_AGENT_NATS_NKEY_FILE: seedFile,
    });
    const running = agent;
    const refusal = await waitFor(
      "a status naming the refusal",
      async () => {
        const answer = await localStatus(running);
        return answer?.status.connection.lastError ? answer : undefined;
      },
      30_000,
    );
    expect(refusal.status.connection.state).not.toBe("connected");
    expect(refusal.status.connection.lastError).toMatch(/authorization/i);
    await waitFor(
      "a second refused attempt",
      async () => running.logs().filter((line) => /refused|retry/i.test(String(line.msg))).length >= 2,
      30_000,
    );
    expect(running.output()).not.toContain("will not be retried");

    // The platform rotates the machine's credentials: the agent picks the new seed up on its next try.
    await writeFile(seedFile, new TextDecoder().decode(admitted.getSeed()), { mode: 0o600 });
    await waitFor(
      "connected after rotation",
      async () => (await localStatus(running))?.status.connection.state === "connected",
      40_000,
    );
    expect((await running.stop("SIGTERM")).code).toBe(0);
  });

  it("stops with exit 0 on SIGTERM when the platform's streams are missing", async () => {
    server = await startNatsServer();
    agent = await startAgentProcess({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "link-2",
      EDGE_AGENT_HEARTBEAT_SECONDS: "1",
    });
    const running = agent;
    await waitFor(
      "connected",
      async () => (await localStatus(running))?.status.connection.state === "connected",
      30_000,
    );
    // Let the outbox, remote config and consumers each hit their missing stream at least once.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(await running.stop("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(running.output()).not.toContain("shutdown took too long");
  });

  it("stops with exit 0 on SIGTERM when its permissions deny everything but connecting", async () => {
    server = await startNatsServer({
      configLines: [
        `authorization { users = [ { user: "link-3", password: "pw", permissions: { publish: { deny: [">"] }, subscribe: { deny: [">"] } } } ] }`,
      ],
    });
    agent = await startAgentProcess({
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "link-3",
      EDGE_AGENT_NATS_USER: "link-3",
      EDGE_AGENT_NATS_PASSWORD: "pw",
      EDGE_AGENT_HEARTBEAT_SECONDS: "1",
    });
    const running = agent;
    await waitFor(
      "connected",
      async () => (await localStatus(running))?.status.connection.state === "connected",
      30_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(await running.stop("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(running.output()).not.toContain("shutdown took too long");
  });
});
