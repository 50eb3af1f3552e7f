import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Agent, createAgent } from "../../../src/agent/create-agent.ts";
import { ClientUninstallStatus, EventHeader } from "../../../src/contracts/index.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { loadSettings } from "../../../src/settings/index.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createSigner, type TestSigner } from "../../helpers/signing.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { createPlatformStreams } from "../../helpers/streams.ts";
import { waitFor } from "../../helpers/wait-for.ts";

const SUBJECT = "machine.u1.client-uninstall";

describe("remote uninstall (machine.{id}.client-uninstall)", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let root: string;
  let platform: TestSigner;
  let agent: Agent | null = null;
  let uninstalls: string[];

  const startAgent = async (signingKey: string | null, extraEnv: NodeJS.ProcessEnv = {}): Promise<void> => {
    const env: NodeJS.ProcessEnv = {
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "u1",
      EDGE_AGENT_DATA_DIR: join(root, "data"),
      EDGE_AGENT_CONFIG_DIR: join(root, "config"),
      // Without a key, unsigned commands are allowed (development): an uninstall is still never taken unsigned.
      ...(signingKey ? { EDGE_AGENT_CONFIG_SIGNING_KEY: signingKey } : { EDGE_AGENT_ALLOW_UNSIGNED: "1" }),
      ...extraEnv,
    };
    const { settings } = loadSettings({ env, platform: "linux", privileged: false });
    agent = await createAgent(settings, {
      clock: systemClock,
      logger: silentLogger(),
      telemetry: false,
      uninstall: async (reason) => {
        uninstalls.push(reason);
      },
    });
    await agent.start();
    // Its uninstall feed takes only commands stored after it was first read: wait for that before sending.
    await waitFor("the first read of its feeds", () => agent?.status().commands.lastCheckedAt !== null, 15_000);
  };
  const publish = async (body: unknown, eventId: string): Promise<void> => {
    const commandHeaders = headers();
    commandHeaders.set(EventHeader.eventId, eventId);
    await jetstream(operator).publish(SUBJECT, JSON.stringify(body), { headers: commandHeaders });
  };
  const statuses = async (): Promise<Array<ClientUninstallStatus & { causationId: string | undefined }>> =>
    (await readStream(operator, "CLIENT_UNINSTALL_STATUS")).map((message) => ({
      ...ClientUninstallStatus.parse(message.body),
      causationId: message.headers[EventHeader.causationId],
    }));

  beforeEach(async () => {
    server = await startNatsServer();
    operator = await connect({ servers: server.url });
    await createPlatformStreams(operator);
    root = await mkdtemp(join(tmpdir(), "edge-agent-uninstall-"));
    platform = createSigner();
    uninstalls = [];
  });

  afterEach(async () => {
    await agent?.stop();
    agent = null;
    await operator.close();
    await server.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it("refuses an unsigned command and a replayed one (reported REJECTED, nothing removed); removes the agent once on a signed one, after reporting it", async () => {
    await startAgent(platform.publicKey);
    await publish({ issuedAt: new Date().toISOString() }, "unsigned");
    await waitFor("the unsigned command refused", async () => (await statuses()).length === 1);
    expect((await statuses())[0]).toMatchObject({
      state: "REJECTED",
      error: expect.stringMatching(/client-uninstall refused: not signed.*EDGE_TRUST_UNSIGNED/),
    });
    expect(uninstalls).toEqual([]);

    // Signed for another machine's subject: refused too.
    await publish(platform.sign("machine.u2.client-uninstall", 1, { issuedAt: new Date().toISOString() }), "moved");
    await waitFor("the moved command refused", async () => (await statuses()).length === 2);
    expect((await statuses())[1]).toMatchObject({
      state: "REJECTED",
      error: expect.stringMatching(/EDGE_TRUST_WRONG_SCOPE/),
    });
    expect(uninstalls).toEqual([]);

    const signed = platform.sign(SUBJECT, 1, { issuedAt: new Date().toISOString() });
    await publish(signed, "signed");
    await waitFor("the uninstall", () => uninstalls.length === 1);
    // Reported (and delivered: the agent waits for its outbox) before the agent was removed.
    const reported = await statuses();
    expect(reported[2]).toMatchObject({ state: "UNINSTALLING", error: null, causationId: "signed" });
    expect(uninstalls[0]).toMatch(/remote uninstall signed/);

    // The same signed command again (a new message id, the same serial): a replay.
    await publish(signed, "replayed");
    await waitFor("the replay refused", async () => (await statuses()).length === 4);
    expect((await statuses())[3]).toMatchObject({
      state: "REJECTED",
      error: expect.stringMatching(/serial 1 is not newer .*EDGE_TRUST_REPLAYED/),
      causationId: "replayed",
    });
    expect(uninstalls).toHaveLength(1);
  });

  it("never acts on an uninstall stored for an earlier installation under the same machine id", async () => {
    // Signed and valid, but stored before this installation's consumer existed (its trust marks are
    // empty, so its serial alone would pass).
    await publish(platform.sign(SUBJECT, 5, { issuedAt: new Date().toISOString() }), "earlier-installation");
    await startAgent(platform.publicKey);
    const fresh = platform.sign(SUBJECT, 1, { issuedAt: new Date().toISOString() });
    await publish(fresh, "this-installation");
    await waitFor("this installation's uninstall", () => uninstalls.length === 1);
    expect((await statuses()).map((status) => status.causationId)).toEqual(["this-installation"]);
  });

  it("refuses every uninstall when the agent has no signing key, even with unsigned commands allowed", async () => {
    await startAgent(null);
    await publish(platform.sign(SUBJECT, 1, { issuedAt: new Date().toISOString() }), "no-key");
    await waitFor("the command refused", async () => (await statuses()).length === 1);
    expect((await statuses())[0]).toMatchObject({
      state: "REJECTED",
      error: expect.stringMatching(/no configSigningKey/),
      causationId: "no-key",
    });
    expect(uninstalls).toEqual([]);
  });

  describe("OpenFrame's unsigned {issuedAt} (allowUnsignedUninstall)", () => {
    /** OpenFrame's uninstall as its publisher makes it: `{issuedAt}`, an ISO instant with nanoseconds, nothing signed. */
    const openFrameUninstall = (): { issuedAt: string } => ({
      issuedAt: new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1456789Z"),
    });

    it("is refused under platform openframe unless allowUnsignedUninstall is set too", async () => {
      await startAgent(null, { EDGE_AGENT_PLATFORM: "openframe", EDGE_AGENT_ALLOW_UNSIGNED: "" });
      expect(agent?.status().capabilities.uninstall).toEqual({ uninstalling: false, accepts: "signed" });
      await publish(openFrameUninstall(), "openframe-default");
      await waitFor("the command refused", async () => (await statuses()).length === 1);
      expect((await statuses())[0]).toMatchObject({
        state: "REJECTED",
        error: expect.stringMatching(/this command is taken only signed/),
        causationId: "openframe-default",
      });
      expect(uninstalls).toEqual([]);
    });

    it("is taken when set, with unsigned commands taken: reported, then the agent removed; one without issuedAt is refused", async () => {
      await startAgent(null, { EDGE_AGENT_PLATFORM: "openframe", EDGE_AGENT_ALLOW_UNSIGNED_UNINSTALL: "true" });
      expect(agent?.status().capabilities.uninstall).toEqual({ uninstalling: false, accepts: "unsigned" });
      expect(agent?.status().platform?.uninstall).toBe("unsigned");
      // What a server's answer stored on the subject looks like (a publish ack): no issuedAt, never an uninstall.
      await publish({ stream: "CLIENT_UNINSTALL", seq: 7 }, "not-a-command");
      await waitFor("the answer refused", async () => (await statuses()).length === 1);
      expect((await statuses())[0]).toMatchObject({
        state: "REJECTED",
        error: expect.stringMatching(/an unsigned uninstall must say when it was issued \(issuedAt\)/),
      });
      expect(uninstalls).toEqual([]);

      await publish(openFrameUninstall(), "openframe");
      await waitFor("the uninstall", () => uninstalls.length === 1);
      expect((await statuses())[1]).toMatchObject({ state: "UNINSTALLING", error: null, causationId: "openframe" });
    });

    it("has no effect with a signing key: an uninstall must then be signed, like every command", async () => {
      await startAgent(platform.publicKey, {
        EDGE_AGENT_PLATFORM: "openframe",
        EDGE_AGENT_ALLOW_UNSIGNED_UNINSTALL: "true",
      });
      expect(agent?.status().capabilities.uninstall).toEqual({ uninstalling: false, accepts: "signed" });
      await publish(openFrameUninstall(), "unsigned-with-key");
      await waitFor("the command refused", async () => (await statuses()).length === 1);
      expect((await statuses())[0]).toMatchObject({
        state: "REJECTED",
        error: expect.stringMatching(/EDGE_TRUST_UNSIGNED/),
      });
      expect(uninstalls).toEqual([]);
    });
  });
});
