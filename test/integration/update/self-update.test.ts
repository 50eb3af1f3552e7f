import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ClientUpdateStatus, InstalledAgentMessage } from "../../../src/contracts/index.ts";
import { AGENT_VERSION } from "../../../src/runtime/version.ts";
import { readUpdateState, updatePaths } from "../../../src/update/update-state.ts";
import { startFileServer } from "../../fixtures/tools/tool-kit.ts";
import { type AgentProcess, runCli, startAgentProcess } from "../../helpers/agent-process.ts";
import { waitForFeedsRead } from "../../helpers/feeds-read.ts";
import { startHttpsFileServer } from "../../helpers/https-file-server.ts";
import { type NatsServerHandle, startNatsServer } from "../../helpers/nats-server.ts";
import { createSigner } from "../../helpers/signing.ts";
import { readStream } from "../../helpers/stream-reader.ts";
import { type Supervised, supervise } from "../../helpers/supervisor.ts";
import { waitFor } from "../../helpers/wait-for.ts";

/** A stand-in agent binary: answers `version` like the real one, and fails (or idles) when run. */
const fakeAgent = (version: string, whenRun: string): Buffer =>
  Buffer.from(`#!/bin/sh\nif [ "$1" = version ]; then echo ${version}; exit 0; fi\n${whenRun}\n`);

describe("self-update of a running agent (from sources; the packaged swap is in packaging/)", () => {
  let server: NatsServerHandle;
  let operator: NatsConnection;
  let files: Awaited<ReturnType<typeof startFileServer>>;
  let root: string;
  let dirs: { dataDir: string; configDir: string };
  let agents: Supervised<AgentProcess> | null = null;

  const statuses = async (): Promise<ClientUpdateStatus[]> =>
    (await readStream(operator, "CLIENT_UPDATE_STATUS")).map((message) => ClientUpdateStatus.parse(message.body));
  const announcements = async (): Promise<InstalledAgentMessage[]> =>
    (await readStream(operator, "INSTALLED_AGENTS")).map((message) => InstalledAgentMessage.parse(message.body));
  const update = async (subject: string, body: unknown): Promise<void> => {
    await jetstream(operator).publish(subject, JSON.stringify(body));
  };
  const env = (): Record<string, string> => ({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_MACHINE_ID: "u1" });
  /**
   * The update feeds give the newest command of their subject (a machine that was offline gets the
   * latest one only): a test that sends several waits until the agent has read them once.
   */
  const listening = (): Promise<void> => waitForFeedsRead(operator, "u1");
  /**
   * One command on a `latest` feed, then its status: sent faster than the agent reads, a newer one
   * would supersede it unread (that is what the feed promises a machine that was away).
   */
  const updateAndWait = async (subject: string, body: unknown): Promise<void> => {
    const before = (await statuses()).length;
    await update(subject, body);
    await waitFor(`status ${before + 1}`, nthStatus(before + 1), 30_000);
  };
  const nthStatus = (count: number) => async (): Promise<ClientUpdateStatus[] | undefined> => {
    const all = await statuses();
    return all.length >= count ? all : undefined;
  };

  beforeEach(async () => {
    server = await startNatsServer();
    expect((await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url })).code).toBe(0);
    operator = await connect({ servers: server.url });
    files = await startFileServer();
    root = await mkdtemp(join(tmpdir(), "edge-self-update-"));
    dirs = { dataDir: join(root, "data"), configDir: join(root, "config") };
  });

  afterEach(async () => {
    await agents?.stop();
    agents = null;
    await operator.close();
    await files.close();
    await server.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it("refuses downgrades, bad versions, missing binaries and wrong checksums, and stages nothing", async () => {
    agents = await supervise(() => startAgentProcess({ ...env(), EDGE_AGENT_SUPERVISED: "1" }, dirs));
    await waitFor("the announcement", async () => (await announcements()).length > 0, 20_000);
    await listening();
    const good = files.add("agent-9.0.0", fakeAgent("9.0.0", "exit 1"));
    await updateAndWait("machine.u1.client-update", {
      version: "0.0.1",
      downloadConfigurations: [{ os: "linux", link: good.url, sha256: good.sha256, size: good.size }],
    });
    // The same version as running: ignored, no status (the next one's status shows it was read).
    await update("machine.u1.client-update", {
      version: AGENT_VERSION,
      downloadConfigurations: [{ os: "linux", link: good.url, sha256: good.sha256 }],
    });
    await updateAndWait("machine.u1.client-update", { version: "../../etc", downloadConfigurations: [] });
    await updateAndWait("machine.u1.client-update", {
      version: "9.0.0",
      downloadConfigurations: [{ os: "windows", link: good.url, sha256: good.sha256 }],
    });
    await updateAndWait("machine.u1.client-update", {
      version: "9.0.0",
      downloadConfigurations: [{ os: "linux", link: good.url }],
    });
    await updateAndWait("machine.u1.client-update", {
      version: "9.0.0",
      downloadConfigurations: [{ os: "linux", link: good.url, sha256: "e".repeat(64) }],
    });
    const liar = files.add("agent-liar", fakeAgent("8.0.0", "exit 1"));
    await updateAndWait("machine.u1.client-update", {
      version: "9.0.0",
      downloadConfigurations: [{ os: "linux", link: liar.url, sha256: liar.sha256 }],
    });

    const seen = await waitFor("six refusals", nthStatus(6), 30_000);
    expect(seen.map((status) => [status.state, status.error])).toEqual([
      ["REJECTED", expect.stringMatching(/0\.0\.1 is older than the running .*downgrades are refused/)],
      ["REJECTED", expect.stringMatching(/version must be semver/)],
      ["REJECTED", "the update has no binary for linux/x64"],
      ["REJECTED", expect.stringMatching(/has no sha256, and this agent requires one/)],
      ["FAILED", expect.stringMatching(/does not match the promised e{64}/)],
      ["FAILED", 'the new binary says it is version "8.0.0", not 9.0.0'],
    ]);
    // The same version as running was ignored, nothing restarted, nothing was left on disk.
    expect(agents.exits).toEqual([]);
    const versions = updatePaths(dirs.dataDir).versionsDir;
    expect(existsSync(versions) ? readdirSync(versions) : []).toEqual([]);
  });

  it("stages a newer version, restarts through the service manager, and rolls back one that keeps failing", async () => {
    agents = await supervise(() => startAgentProcess({ ...env(), EDGE_AGENT_SUPERVISED: "1" }, dirs));
    await waitFor("the announcement", async () => (await announcements()).length > 0, 20_000);
    await listening();
    const broken = files.add("agent-9.1.0", fakeAgent("9.1.0", 'echo "9.1.0 cannot start" >&2; exit 1'));
    await update("machine.u1.client-update", {
      version: "v9.1.0",
      downloadConfigurations: [{ os: "linux", link: broken.url, sha256: broken.sha256, size: broken.size }],
    });

    const seen = await waitFor("RESTARTING, then ROLLED_BACK", nthStatus(2), 45_000);
    expect(seen.map((status) => [status.version, status.runningVersion, status.state])).toEqual([
      ["9.1.0", AGENT_VERSION, "RESTARTING"],
      ["9.1.0", AGENT_VERSION, "ROLLED_BACK"],
    ]);
    expect(seen[1]?.error).toMatch(/stopped 3 times before reporting healthy/);
    // Exit 75 asked for the restart; the trial then failed three times; the packaged agent runs again.
    expect(agents.exits).toEqual([75, 1, 1, 1]);
    await waitFor("the packaged version announced again", async () => (await announcements()).length >= 2, 20_000);
    expect((await announcements()).every((announcement) => announcement.version === AGENT_VERSION)).toBe(true);
    const state = await readUpdateState(updatePaths(dirs.dataDir));
    expect(state).toMatchObject({
      active: null,
      trial: null,
      pendingReports: [],
      rolledBack: [expect.objectContaining({ version: "9.1.0" })],
    });
    // Its folder is gone once the agent is back.
    await waitFor(
      "the failed version removed",
      () => !existsSync(join(updatePaths(dirs.dataDir).versionsDir, "9.1.0")),
      10_000,
    );

    // A fleet-wide broadcast does not try it again; one addressed to this machine would.
    await update("machine.all.client-update", {
      version: "9.1.0",
      downloadConfigurations: [{ os: "linux", link: broken.url, sha256: broken.sha256 }],
    });
    const after = await waitFor("the refusal", nthStatus(3), 20_000);
    expect(after[2]).toMatchObject({
      state: "REJECTED",
      error: expect.stringMatching(/was rolled back here .*send it to machine\.u1\.client-update/),
    });
  });

  it("under OpenFrame's conventions, takes a binary without a sha256 from an allowed HTTPS host only, and reports the sha256 it received", async () => {
    const https = await startHttpsFileServer();
    try {
      agents = await supervise(() =>
        startAgentProcess(
          {
            ...env(),
            EDGE_AGENT_SUPERVISED: "1",
            EDGE_AGENT_PLATFORM: "openframe",
            EDGE_AGENT_ALLOWED_DOWNLOAD_HOSTS: "127.0.0.1",
            // The test's own certificate authority, for this agent process only.
            NODE_EXTRA_CA_CERTS: https.caFile,
          },
          dirs,
        ),
      );
      await waitFor("the announcement", async () => (await announcements()).length > 0, 20_000);
      await listening();
      const overHttp = files.add("agent-9.3.0", fakeAgent("9.3.0", "exit 1"));
      const served = https.add("agent-9.3.0", fakeAgent("9.3.0", "exit 1"));
      // OpenFrame's update: a version and its downloads, no sha256.
      await updateAndWait("machine.u1.client-update", {
        version: "9.3.0",
        downloadConfigurations: [{ os: "linux", fileName: "edge-agent", link: overHttp.url }],
      });
      await updateAndWait("machine.u1.client-update", {
        version: "9.3.0",
        downloadConfigurations: [{ os: "linux", fileName: "edge-agent", link: served.urlByName }],
      });
      await update("machine.u1.client-update", {
        version: "9.3.0",
        downloadConfigurations: [{ os: "linux", fileName: "edge-agent", link: served.url }],
      });

      const seen = await waitFor("two refusals, then RESTARTING and ROLLED_BACK", nthStatus(4), 60_000);
      expect(seen.map((status) => [status.state, status.error])).toEqual([
        ["REJECTED", expect.stringMatching(/has no sha256, and a download without one is taken over HTTPS only/)],
        ["REJECTED", expect.stringMatching(/"localhost:\d+" is not one of the hosts allowed/)],
        ["RESTARTING", null],
        ["ROLLED_BACK", expect.stringMatching(/stopped 3 times before reporting healthy/)],
      ]);
      // What it ran, as received: the platform can tell a changed file under the same link.
      expect(seen[2]?.download).toEqual({
        file: "edge-agent",
        link: served.url,
        size: served.size,
        sha256: served.sha256,
        verified: false,
      });
    } finally {
      await https.close();
    }
  });

  it("with signing on, processes a signed command once, and refuses it replayed, moved to this machine from another or the fleet, or unsigned", async () => {
    const platform = createSigner();
    agents = await supervise(() =>
      startAgentProcess(
        { ...env(), EDGE_AGENT_SUPERVISED: "1", EDGE_AGENT_CONFIG_SIGNING_KEY: platform.publicKey },
        dirs,
      ),
    );
    await waitFor("the announcement", async () => (await announcements()).length > 0, 20_000);
    await listening();
    // A binary that fails its check: processing it shows as FAILED, and nothing restarts.
    const liar = files.add("agent-liar", fakeAgent("8.0.0", "exit 1"));
    const body = { version: "9.0.0", downloadConfigurations: [{ os: "linux", link: liar.url, sha256: liar.sha256 }] };
    const forThisMachine = platform.sign("machine.u1.client-update", 1, body);
    await update("machine.u1.client-update", forThisMachine);
    await waitFor("the signed command processed", nthStatus(1), 30_000);
    await updateAndWait("machine.u1.client-update", forThisMachine);
    await updateAndWait("machine.u1.client-update", platform.sign("machine.u2.client-update", 2, body));
    await updateAndWait("machine.u1.client-update", platform.sign("machine.all.client-update", 2, body));
    await updateAndWait("machine.u1.client-update", body);
    const seen = await waitFor("four refusals", nthStatus(5), 30_000);
    expect(seen.map((status) => [status.state, status.error])).toEqual([
      ["FAILED", 'the new binary says it is version "8.0.0", not 9.0.0'],
      [
        "REJECTED",
        expect.stringMatching(
          /serial 1 is not newer than serial 1 already finished for machine\.u1\.client-update.*EDGE_TRUST_REPLAYED/,
        ),
      ],
      [
        "REJECTED",
        expect.stringMatching(
          /signed for "machine\.u2\.client-update", but it arrived on "machine\.u1\.client-update".*EDGE_TRUST_WRONG_SCOPE/,
        ),
      ],
      ["REJECTED", expect.stringMatching(/signed for "machine\.all\.client-update".*EDGE_TRUST_WRONG_SCOPE/)],
      ["REJECTED", expect.stringMatching(/not signed.*EDGE_TRUST_UNSIGNED/)],
    ]);

    // Fleet-wide: signed for the fleet, it is processed once; replayed after a restart, refused.
    await update("machine.all.client-update", platform.sign("machine.all.client-update", 1, body));
    await waitFor("the fleet command processed", nthStatus(6), 30_000);
    await agents.stop();
    agents = await supervise(() =>
      startAgentProcess(
        { ...env(), EDGE_AGENT_SUPERVISED: "1", EDGE_AGENT_CONFIG_SIGNING_KEY: platform.publicKey },
        dirs,
      ),
    );
    await update("machine.all.client-update", platform.sign("machine.all.client-update", 1, body));
    const after = await waitFor("the fleet replay refused", nthStatus(7), 30_000);
    expect(after.slice(5).map((status) => [status.state, status.error])).toEqual([
      ["FAILED", 'the new binary says it is version "8.0.0", not 9.0.0'],
      ["REJECTED", expect.stringMatching(/EDGE_TRUST_REPLAYED/)],
    ]);
    expect(agents.exits).toEqual([]);
  });

  it("run by hand (no service manager), restarts itself in place through its launcher", async () => {
    const marker = join(root, "trial-ran");
    const idle = files.add("agent-9.2.0", fakeAgent("9.2.0", `echo "$@" > ${marker}; exec sleep 60`));
    const agent = await startAgentProcess(env(), dirs);
    agents = await supervise(async () => agent, { maxStarts: 1 });
    await waitFor("the announcement", async () => (await announcements()).length > 0, 20_000);
    await listening();
    await update("machine.u1.client-update", {
      version: "9.2.0",
      downloadConfigurations: [{ os: "linux", link: idle.url, sha256: idle.sha256 }],
    });
    await waitFor("the trial running", () => existsSync(marker), 30_000);
    // Same process: exec, not a child; the launcher handed on its arguments.
    expect(agent.child.exitCode).toBeNull();
    expect(statSync(`/proc/${agent.child.pid}/exe`).ino).toBe(statSync("/usr/bin/sleep").ino);
    const state = await readUpdateState(updatePaths(dirs.dataDir));
    expect(state.trial).toMatchObject({ version: "9.2.0", launches: 1, fromVersion: AGENT_VERSION });
  });
});
