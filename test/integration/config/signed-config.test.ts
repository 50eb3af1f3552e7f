import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigStatus } from "../../../src/contracts/index.ts";
import { startFileServer } from "../../fixtures/tools/tool-kit.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createSigner, type TestSigner } from "../../helpers/signing.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/**
 * Issue #12: with `configSigningKey` set, a signed document acts only where it was signed for
 * (scope), only once and only forward (serial), and nothing unsigned changes anything. Against a
 * real nats-server and the real agent daemon.
 */
describe("signed remote configuration and pushes on a running agent", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let kv: KV;
  let agent: AgentProcess;
  let platform: TestSigner;
  let files: Awaited<ReturnType<typeof startFileServer>>;
  /** How many config.status reports the test has looked at so far. */
  let looked = 0;

  const statuses = async (): Promise<ConfigStatus[]> =>
    (await readStream(operator, "CONFIG_STATUS")).map((message) => ConfigStatus.parse(message.body));
  /** The next report after the ones already looked at (reports come one per change, in order). */
  const nextStatus = async (what: string): Promise<ConfigStatus> => {
    const index = looked;
    const all = await waitFor(
      what,
      async () => {
        const seen = await statuses();
        return seen.length > index ? seen : undefined;
      },
      20_000,
    );
    looked += 1;
    return all[index] as ConfigStatus;
  };
  const running = async (): Promise<{ heartbeatSeconds: number; tags?: Record<string, string> }> =>
    (await operator.request("machine.p1.rpc.config", "", { timeout: 5_000 })).json<{
      running: { heartbeatSeconds: number; tags?: Record<string, string> };
    }>().running;
  const startAgent = async (dirs?: { dataDir: string; configDir: string }): Promise<AgentProcess> =>
    startAgentProcess(
      {
        EDGE_AGENT_NATS_URL: server.url,
        EDGE_AGENT_MACHINE_ID: "p1",
        EDGE_AGENT_CONFIG_SIGNING_KEY: platform.publicKey,
        EDGE_AGENT_HEARTBEAT_SECONDS: "60",
      },
      dirs,
    );

  beforeEach(async () => {
    server = await startNatsServer();
    expect((await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url })).code).toBe(0);
    operator = await connect({ servers: server.url });
    kv = await new Kvm(operator).open("agent-config");
    platform = createSigner();
    files = await startFileServer();
    looked = 0;
    agent = await startAgent();
  });

  afterEach(async () => {
    await agent.dispose();
    await operator.close();
    await files.close();
    await server.dispose();
  });

  it("KV: refuses old, moved, unsigned and unknown changes (deletions included) and applies signed ones, across a restart", async () => {
    const first = platform.sign("kv:machine.p1", 1, { heartbeatSeconds: 5 });
    const revision = await kv.put("machine.p1", JSON.stringify(first));
    expect(await nextStatus("the first signed document")).toMatchObject({ revision, status: "APPLIED" });
    await kv.put("machine.p1", JSON.stringify(platform.sign("kv:machine.p1", 2, { heartbeatSeconds: 6 })));
    expect(await nextStatus("the second")).toMatchObject({ status: "APPLIED" });

    // An old, validly signed document put again after a newer one.
    await kv.put("machine.p1", JSON.stringify(first));
    expect(await nextStatus("the replay")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/serial 1 is not newer than serial 2 .*EDGE_TRUST_REPLAYED/),
    });
    // A document signed for machine p2 put on p1's key; one signed for p1 put on the fleet's key.
    await kv.put("machine.p1", JSON.stringify(platform.sign("kv:machine.p2", 9, { heartbeatSeconds: 7 })));
    expect(await nextStatus("another machine's document")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/signed for "kv:machine.p2", but it arrived on "kv:machine.p1"/),
    });
    await kv.put("defaults", JSON.stringify(platform.sign("kv:machine.p1", 9, { heartbeatSeconds: 7 })));
    expect(await nextStatus("a machine document on defaults")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/signed for "kv:machine.p1", but it arrived on "kv:defaults"/),
    });
    // Unsigned changes: a put, DEL, PURGE, and an operation nobody defined.
    await kv.put("machine.p1", JSON.stringify({ heartbeatSeconds: 8 }));
    expect(await nextStatus("an unsigned put")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/not signed/),
    });
    await kv.delete("machine.p1");
    expect(await nextStatus("DEL")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/unsigned DEL is refused/),
    });
    await kv.purge("machine.p1");
    expect(await nextStatus("PURGE")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/unsigned PURGE is refused/),
    });
    const odd = headers();
    odd.set("KV-Operation", "WIPE");
    await jetstream(operator).publish("$KV.agent-config.machine.p1", new Uint8Array(), { headers: odd });
    expect(await nextStatus("an unknown operation")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/unknown KV-Operation "WIPE"/),
    });
    // An oversized tags document, however well signed.
    const hugeTags = Object.fromEntries(Array.from({ length: 5_000 }, (_, index) => [`tag-${index}`, "x".repeat(120)]));
    await kv.put("machine.p1", JSON.stringify(platform.sign("kv:machine.p1", 3, { tags: hugeTags })));
    expect(await nextStatus("the huge tags")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/tags: 5000 tags, at most 64 are allowed/),
    });
    // None of it changed what runs.
    expect(await running()).toMatchObject({ heartbeatSeconds: 6 });

    // A deletion the platform means: a signed tombstone. Back to the local settings.
    await kv.put("machine.p1", JSON.stringify(platform.sign("kv:machine.p1", 4, { deleted: true })));
    expect(await nextStatus("the tombstone")).toMatchObject({ status: "APPLIED" });
    expect(await running()).toMatchObject({ heartbeatSeconds: 60 });

    // A restart does not forget what was accepted: the serial-2 document is still old.
    const dirs = { dataDir: agent.dataDir, configDir: agent.configDir };
    await agent.stop();
    agent = await startAgent(dirs);
    const replayed = await kv.put(
      "machine.p1",
      JSON.stringify(platform.sign("kv:machine.p1", 2, { heartbeatSeconds: 6 })),
    );
    // A restarted agent reports what it runs and judges the keys again: look for this revision's report.
    const verdict = await waitFor(
      "the replay after a restart",
      async () => (await statuses()).find((status) => status.revision === replayed),
      20_000,
    );
    expect(verdict).toMatchObject({ status: "REJECTED", error: expect.stringMatching(/EDGE_TRUST_REPLAYED/) });
    expect(await running()).toMatchObject({ heartbeatSeconds: 60 });
  });

  it("pushes: applies a signed push; refuses it replayed, moved, unsigned or unchecked; its document is no good in KV, nor a KV document as a push", async () => {
    const documentFile = files.add("agent.json", Buffer.from(JSON.stringify({ revision: 3, heartbeatSeconds: 4 })));
    const entry = {
      os: "linux",
      fileName: "agent.json",
      link: documentFile.url,
      sha256: documentFile.sha256,
      size: documentFile.size,
    };
    const push = platform.sign("machine.p1.download-configuration", 1, { downloadConfigurations: [entry] });
    const publish = (subject: string, body: unknown) => jetstream(operator).publish(subject, JSON.stringify(body));
    await publish("machine.p1.download-configuration", push);
    expect(await nextStatus("the signed push")).toMatchObject({ status: "APPLIED", revision: 3 });
    expect(await running()).toMatchObject({ heartbeatSeconds: 4 });

    // The pushed revision-3 document, and the signed push itself, put into the machine's KV key.
    await kv.put("machine.p1", JSON.stringify({ revision: 3, heartbeatSeconds: 4 }));
    expect(await nextStatus("the pushed document in KV")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/not signed/),
    });
    await kv.put("machine.p1", JSON.stringify(push));
    expect(await nextStatus("the push in KV")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/signed for "machine.p1.download-configuration", but it arrived on "kv:machine.p1"/),
    });

    // The same push again, one for p2, one for the fleet and a KV document, each sent to p1.
    await publish("machine.p1.download-configuration", push);
    expect(await nextStatus("the replayed push")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/serial 1 is not newer .*EDGE_TRUST_REPLAYED/),
    });
    await publish(
      "machine.p1.download-configuration",
      platform.sign("machine.p2.download-configuration", 5, { downloadConfigurations: [entry] }),
    );
    expect(await nextStatus("p2's push")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/EDGE_TRUST_WRONG_SCOPE/),
    });
    await publish(
      "machine.p1.download-configuration",
      platform.sign("machine.all.download-configuration", 5, { downloadConfigurations: [entry] }),
    );
    expect(await nextStatus("the fleet's push")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/EDGE_TRUST_WRONG_SCOPE/),
    });
    await publish(
      "machine.p1.download-configuration",
      platform.sign("kv:machine.p1", 5, { downloadConfigurations: [entry] }),
    );
    expect(await nextStatus("a KV document as a push")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/EDGE_TRUST_WRONG_SCOPE/),
    });
    // Unsigned (OpenFrame's bare list), and signed but naming no checksum for the file.
    await publish("machine.p1.download-configuration", [entry]);
    expect(await nextStatus("an unsigned push")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/a bare list.*EDGE_TRUST_UNSIGNED/),
    });
    const { sha256: _sha256, ...unchecked } = entry;
    await publish(
      "machine.p1.download-configuration",
      platform.sign("machine.p1.download-configuration", 2, { downloadConfigurations: [unchecked] }),
    );
    expect(await nextStatus("a push with no checksum")).toMatchObject({
      status: "REJECTED",
      error: expect.stringMatching(/names no sha256/),
    });
    expect(await running()).toMatchObject({ heartbeatSeconds: 4 });

    // The fleet-wide push, signed for the fleet, applies.
    const fleetFile = files.add("fleet.json", Buffer.from(JSON.stringify({ revision: 4, heartbeatSeconds: 9 })));
    await publish(
      "machine.all.download-configuration",
      platform.sign("machine.all.download-configuration", 1, {
        downloadConfigurations: [
          { os: "linux", fileName: "fleet.json", link: fleetFile.url, sha256: fleetFile.sha256 },
        ],
      }),
    );
    expect(await nextStatus("the fleet push")).toMatchObject({ status: "APPLIED", revision: 4 });
    expect(await running()).toMatchObject({ heartbeatSeconds: 9 });
  });

  it("the operator CLI signs for the key with a rising serial, and deletes with a signed tombstone", async () => {
    const seedFile = join(agent.configDir, "..", "platform.nk");
    await writeFile(seedFile, new TextDecoder().decode(platform.seed), { mode: 0o600 });
    const cli = (...args: string[]) =>
      runCli(["config", ...args, "--machine", "p1", "--signing-seed-file", seedFile], {
        EDGE_AGENT_NATS_URL: server.url,
      });
    expect((await cli("set", "heartbeatSeconds", "3")).stdout).toMatch(/machine\.p1: revision \d+ \(signed\)/);
    expect(await nextStatus("the signed set")).toMatchObject({ status: "APPLIED" });
    const first = (await kv.get("machine.p1"))?.json<{ scope: string; serial: number }>();
    expect(first).toMatchObject({ scope: "kv:machine.p1", heartbeatSeconds: 3 });
    expect((await cli("set", "heartbeatSeconds", "4")).code).toBe(0);
    expect(await nextStatus("the second signed set")).toMatchObject({ status: "APPLIED" });
    expect((await kv.get("machine.p1"))?.json<{ serial: number }>().serial).toBeGreaterThan(first?.serial ?? Infinity);
    expect(await running()).toMatchObject({ heartbeatSeconds: 4 });

    expect((await cli("delete")).code).toBe(0);
    expect(await nextStatus("the tombstone")).toMatchObject({ status: "APPLIED" });
    expect((await kv.get("machine.p1"))?.json<unknown>()).toMatchObject({ deleted: true, scope: "kv:machine.p1" });
    expect(await running()).toMatchObject({ heartbeatSeconds: 60 });
  });
});
