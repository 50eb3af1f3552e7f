import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { afterEach, describe, expect, it } from "vitest";
import { AGENT_CONFIG_STREAM, COMMAND_STREAMS } from "../../../src/contracts/index.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { waitFor } from "../../helpers/wait-for.ts";

interface LocalStatus {
  readonly source: string;
  readonly status: { readonly connection: { readonly state: string; readonly lastError?: string | null } };
}

/** The feeds an agent reads from its start (a tool's update feed only once the tool is installed). */
const FEEDS_AT_START = [
  COMMAND_STREAMS.toolInstallation,
  COMMAND_STREAMS.clientUpdate,
  COMMAND_STREAMS.configPush,
  COMMAND_STREAMS.clientUninstall,
  AGENT_CONFIG_STREAM,
];

/**
 * Every loop that talks to the server has failed at least once: the outbox kept its events, each
 * command feed (remote config among them) said it cannot read yet.
 */
function everyLoopFailedOnce(running: AgentProcess): boolean {
  const warnings = running.logs().filter((line) => line.level === "warn");
  const feedsWarned = new Set(
    warnings.filter((line) => line.component === "commands").map((line) => String(line.stream)),
  );
  return warnings.some((line) => line.component === "outbox") && FEEDS_AT_START.every((feed) => feedsWarned.has(feed));
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
    await waitFor("the outbox and every command feed to meet their missing stream", () => everyLoopFailedOnce(running));
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
    await waitFor("the outbox, every command feed and a second heartbeat to be refused", () => {
      const heartbeatsRefused = running
        .logs()
        .filter((line) =>
          String((line.err as { message?: unknown } | undefined)?.message).endsWith(
            'Permissions Violation for Publish to "machine.link-3.heartbeat"',
          ),
        );
      return heartbeatsRefused.length >= 2 && everyLoopFailedOnce(running);
    });
    expect(await running.stop("SIGTERM")).toEqual({ code: 0, signal: null });
    expect(running.output()).not.toContain("shutdown took too long");
  });
});
