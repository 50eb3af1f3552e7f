import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import type { ClientUpdateStatus } from "../../../src/contracts/index.ts";
import { agentPermissions } from "../../../src/identity/permissions.ts";
import { type AgentProcess, startAgentProcess } from "../../helpers/agent-process.ts";
import { waitForFeedsRead } from "../../helpers/feeds-read.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const MACHINES = ["junk-a", "junk-b", "junk-c"] as const;

/**
 * In one account, a machine can make the server store junk on a fleet-wide subject (a publish ack
 * sent there: nats-server does not check reply subjects). Each such message used to become a status
 * from every machine; now each machine answers at most once per subject and kind of reason an hour.
 */
describe("junk stored on a fleet-wide subject is answered once, not once per copy", () => {
  let server: NatsServerHandle | undefined;
  let root: string | undefined;
  const agents: AgentProcess[] = [];
  const connections: NatsConnection[] = [];

  afterEach(async () => {
    for (const connection of connections.splice(0)) await connection.close().catch(() => undefined);
    for (const agent of agents.splice(0)) await agent.dispose();
    await server?.dispose();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it("200 publish acks aimed at machine.all.client-update make at most one REJECTED per machine", async () => {
    root = await mkdtemp(join(tmpdir(), "edge-agent-fleet-junk-"));
    const users = MACHINES.map(
      (id) => `{ user: "${id}", password: "secret-${id}", permissions: ${JSON.stringify(agentPermissions(id))} }`,
    );
    server = await startNatsServer({
      configLines: [`authorization { users: [ { user: admin, password: admin }, ${users.join(", ")} ] }`],
    });
    const admin = await connect({ servers: server.url, user: "admin", pass: "admin" });
    connections.push(admin);
    await createPlatformStreams(admin);
    for (const id of MACHINES) {
      agents.push(
        await startAgentProcess({
          EDGE_AGENT_NATS_URL: server.url,
          EDGE_AGENT_MACHINE_ID: id,
          EDGE_AGENT_NATS_USER: id,
          EDGE_AGENT_NATS_PASSWORD: `secret-${id}`,
        }),
      );
    }
    for (const id of MACHINES) await waitForFeedsRead(admin, id);

    // The attacker: junk-a, with exactly its own set. Each of its telemetry publishes is stored (its
    // own event) and the server stores its publish ack on the fleet's update subject.
    const attacker = await connect({
      servers: server.url,
      user: "junk-a",
      pass: "secret-junk-a",
      inboxPrefix: "_INBOX_junk-a",
    });
    connections.push(attacker);
    for (let index = 0; index < 200; index++) {
      attacker.publish("machine.junk-a.telemetry", "{}", { reply: "machine.all.client-update" });
      if (index % 20 === 19) await attacker.flush();
    }
    await attacker.flush();
    const statuses = async (): Promise<Array<{ subject: string; body: ClientUpdateStatus }>> =>
      (await readStream(admin, "CLIENT_UPDATE_STATUS")).map((message) => ({
        subject: message.subject,
        body: message.body as ClientUpdateStatus,
      }));
    // Then a real (refused) fleet command, for a reason of its own: once every machine answered it,
    // every machine has read the subject past the junk.
    await admin.request("machine.all.client-update", JSON.stringify({ version: "0.0.1", downloadConfigurations: [] }));
    const sentinel = /0\.0\.1 is older than the running/;
    await waitFor(
      "each machine's answer to the real command",
      async () => (await statuses()).filter((status) => sentinel.test(status.body.error ?? "")).length === 3,
      20_000,
    );
    const answered = await statuses();
    for (const id of MACHINES) {
      const junk = answered.filter(
        (status) => status.subject === `machine.${id}.client-update.status` && !sentinel.test(status.body.error ?? ""),
      );
      expect(junk.length, id).toBeLessThanOrEqual(1);
      for (const status of junk)
        expect(status.body).toMatchObject({
          state: "REJECTED",
          error: expect.stringMatching(/malformed client-update/),
        });
    }
    // The 200 copies were stored (what the account layout prevents; see account-layout.test.ts).
    const stored = await admin.request("$JS.API.STREAM.INFO.CLIENT_UPDATE", "", { timeout: 3_000 });
    expect(stored.json<{ state: { messages: number } }>().state.messages).toBeGreaterThanOrEqual(200);
  }, 60_000);
});
