import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { AGENT_CONFIG_BUCKET, EventHeader } from "../../src/contracts/index.ts";
import { lyingZip, tarGzBomb, zipBomb } from "../../test/fixtures/tools/bombs.ts";
import { startFileServer, TOOL_SCRIPT, toolZip } from "../../test/fixtures/tools/tool-kit.ts";
import { type AgentProcess, runCli } from "../../test/helpers/agent-process.ts";
import { startNatsServer } from "../../test/helpers/nats-server.ts";
import { readStream } from "../../test/helpers/stream-reader.ts";
import { waitFor } from "../../test/helpers/wait-for.ts";
import { AgentFleet } from "../support/agent-fleet.ts";
import { accountFor } from "../support/ledger.ts";
import type { FaultScenario, ScenarioResult } from "../support/scenario.ts";
import { storedEvents } from "../support/stored-events.ts";

const MACHINE = "hostile-1";
/** An echoed input longer than this in a status is a defect: a hostile field must not be repeated back whole. */
const MAX_ECHOED_ERROR = 2_048;
/** Far above an agent's working set (about 150 MB), far below what a bomb took before (1.2-2.35 GB). */
const PEAK_RSS_BOUND_MB = 400;

type FileServer = Awaited<ReturnType<typeof startFileServer>>;

interface CaseContext {
  readonly operator: NatsConnection;
  readonly files: FileServer;
  readonly agent: AgentProcess;
}

/** What a hostile input must lead to: a status that refuses it, or just a settled message. */
type Expectation =
  | { readonly status: "FAILED" | "REJECTED"; readonly stream: "TOOL_STATUS" | "CONFIG_STATUS" }
  /** Read and settled by the agent with nothing to report (its status: no command pending or running, feeds read since). */
  | { readonly settled: true };

export interface HostileCase {
  readonly name: string;
  send(context: CaseContext, caseId: string): Promise<void>;
  readonly expect: Expectation;
  /** Once the expectation is met: what else must hold (e.g. nothing written outside), or the problem. */
  verify?(context: CaseContext): Promise<string | null>;
}

async function publishCommand(
  context: CaseContext,
  subject: string,
  body: string | Uint8Array,
  caseId: string,
  extraHeaders: Record<string, string> = {},
): Promise<void> {
  const headers = natsHeaders();
  headers.set(EventHeader.eventId, caseId);
  for (const [name, value] of Object.entries(extraHeaders)) headers.set(name, value);
  await jetstream(context.operator).publish(subject, body, { headers, msgID: caseId });
}

const install = (toolAgentId: string, downloadConfigurations: unknown[], extra: Record<string, unknown> = {}): string =>
  JSON.stringify({
    toolAgentId,
    version: "1.0.0",
    downloadConfigurations,
    installationCommandArgs: ["install", "1.0.0"],
    ...extra,
  });

const GIB = 1024 ** 3;

/** An archive bomb made on the fly (a few MB on disk), served with its true checksum: only unpacking can refuse it. */
async function sendBomb(
  context: CaseContext,
  caseId: string,
  toolAgentId: string,
  extension: string,
  make: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "edge-faults-bomb-"));
  try {
    const path = join(dir, `bomb.${extension}`);
    await make(path);
    const served = context.files.add(`${toolAgentId}.${extension}`, await readFile(path));
    await publishCommand(
      context,
      `machine.${MACHINE}.tool-installation`,
      install(toolAgentId, [
        { os: "linux", agentFileName: "zeros.bin", link: served.url, sha256: served.sha256, size: served.size },
      ]),
      caseId,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Where the symlink case's tool links its `out` folder: beside the agent's data dir, removed with it. */
const outsideOf = (context: CaseContext): string => join(dirname(context.agent.dataDir), "outside-symtool");

/** A tool whose installer links a folder of its own elsewhere (`bin/out -> $2`), as real tools do. */
const LINKING_TOOL = `#!/bin/sh
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$2" && ln -s "$2" "$here/out"
`;

/** The table: every kind of bad input the platform (or someone holding its credentials) could send. */
export const HOSTILE_CASES: readonly HostileCase[] = [
  {
    name: "tool install: not JSON",
    send: (context, id) => publishCommand(context, `machine.${MACHINE}.tool-installation`, "{not json", id),
    expect: { settled: true },
  },
  {
    name: "tool install: wrong schema",
    send: (context, id) =>
      publishCommand(
        context,
        `machine.${MACHINE}.tool-installation`,
        JSON.stringify({ toolAgentId: "schema-tool", downloadConfigurations: "nope" }),
        id,
      ),
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: wrong checksum",
    async send(context, id) {
      const served = context.files.add(
        "checksum.zip",
        await toolZip({ "tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }),
      );
      await publishCommand(
        context,
        `machine.${MACHINE}.tool-installation`,
        install("checksum-tool", [
          { os: "linux", agentFileName: "tool.sh", link: served.url, sha256: "0".repeat(64), size: served.size },
        ]),
        id,
      );
    },
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: hostile path in agentFileName",
    async send(context, id) {
      const served = context.files.add("path.zip", await toolZip({ "tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 } }));
      await publishCommand(
        context,
        `machine.${MACHINE}.tool-installation`,
        install("path-tool", [
          {
            os: "linux",
            agentFileName: "../../../../tmp/edge-faults-evil",
            link: served.url,
            sha256: served.sha256,
            size: served.size,
          },
        ]),
        id,
      );
    },
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: zip entry climbing out (zip slip)",
    async send(context, id) {
      // Zip writers refuse such names, so one of the same length is swapped in, in place.
      const archive = await toolZip({
        "xx/escaped.sh": { data: TOOL_SCRIPT, mode: 0o100755 },
        "tool.sh": { data: TOOL_SCRIPT, mode: 0o100755 },
      });
      const served = context.files.add(
        "slip.zip",
        Buffer.from(archive.toString("latin1").replaceAll("xx/escaped.sh", "../escaped.sh"), "latin1"),
      );
      await publishCommand(
        context,
        `machine.${MACHINE}.tool-installation`,
        install("slip-tool", [
          { os: "linux", agentFileName: "tool.sh", link: served.url, sha256: served.sha256, size: served.size },
        ]),
        id,
      );
    },
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: download larger than declared",
    async send(context, id) {
      const served = context.files.add(
        "big.zip",
        await toolZip({ "tool.sh": { data: TOOL_SCRIPT + "#".repeat(200_000), mode: 0o100755 } }),
      );
      await publishCommand(
        context,
        `machine.${MACHINE}.tool-installation`,
        install("size-tool", [
          { os: "linux", agentFileName: "tool.sh", link: served.url, sha256: served.sha256, size: 1_000 },
        ]),
        id,
      );
    },
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: 900 KB of junk fields",
    send: (context, id) =>
      publishCommand(
        context,
        `machine.${MACHINE}.tool-installation`,
        install("junk-tool", [], { installationCommandArgs: "x".repeat(900_000) }),
        id,
      ),
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: tar.gz bomb, 2 GiB of zeros",
    send: (context, id) => sendBomb(context, id, "bomb-tar", "tar.gz", (path) => tarGzBomb(path, 2 * GIB)),
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: tar.gz bomb, 2 GiB at 230:1",
    send: (context, id) =>
      sendBomb(context, id, "bomb-speckled", "tar.gz", (path) => tarGzBomb(path, 2 * GIB, "speckled")),
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: zip bomb, 1 GiB of zeros",
    send: (context, id) => sendBomb(context, id, "bomb-zip", "zip", (path) => zipBomb(path, GIB)),
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: zip entry declaring 1,000 bytes that inflates to 100 MB",
    send: (context, id) => sendBomb(context, id, "lying-zip", "zip", (path) => lyingZip(path, 1_000, 100_000_000)),
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: 300-character toolAgentId",
    send: (context, id) =>
      publishCommand(context, `machine.${MACHINE}.tool-installation`, install("t".repeat(300), []), id),
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "tool install: 900 KB invalid toolAgentId echoed",
    send: (context, id) =>
      publishCommand(context, `machine.${MACHINE}.tool-installation`, install("../".repeat(300_000), []), id),
    expect: { status: "FAILED", stream: "TOOL_STATUS" },
  },
  {
    name: "config push: malformed",
    send: (context, id) =>
      publishCommand(context, `machine.${MACHINE}.download-configuration`, JSON.stringify({ os: 42 }), id),
    expect: { status: "REJECTED", stream: "CONFIG_STATUS" },
  },
  {
    name: "config push: hostile file name",
    async send(context, id) {
      const served = context.files.add("evil.txt", Buffer.from("evil"));
      await publishCommand(
        context,
        `machine.${MACHINE}.download-configuration`,
        JSON.stringify([
          { os: "linux", agentFileName: "../../etc/evil", link: served.url, sha256: served.sha256, size: served.size },
        ]),
        id,
      );
    },
    expect: { status: "REJECTED", stream: "CONFIG_STATUS" },
  },
  {
    name: "config push: file through a link the tool's installer made",
    async send(context, id) {
      const tool = context.files.add(
        "symtool.zip",
        await toolZip({ "bin/tool.sh": { data: LINKING_TOOL, mode: 0o100755 } }),
      );
      await publishCommand(
        context,
        `machine.${MACHINE}.tool-installation`,
        install(
          "symtool",
          [{ os: "linux", agentFileName: "bin/tool.sh", link: tool.url, sha256: tool.sha256, size: tool.size }],
          { installationCommandArgs: ["install", outsideOf(context)] },
        ),
        `${id}-install`,
      );
      await waitFor(
        "the linking tool to be installed",
        async () =>
          (await readStream(context.operator, "TOOL_STATUS")).some(
            (message) =>
              message.headers[EventHeader.causationId] === `${id}-install` &&
              (message.body as { state?: string }).state === "INSTALLED",
          ),
        30_000,
        200,
      );
      const payload = context.files.add("pwned.txt", Buffer.from("pwned\n"));
      await publishCommand(
        context,
        `machine.${MACHINE}.download-configuration`,
        JSON.stringify([
          {
            os: "linux",
            agentFileName: "symtool/bin/out/pwned.txt",
            link: payload.url,
            sha256: payload.sha256,
            size: payload.size,
          },
        ]),
        id,
      );
    },
    expect: { status: "REJECTED", stream: "CONFIG_STATUS" },
    async verify(context) {
      const written = await readdir(outsideOf(context)).catch(() => []);
      return written.length === 0 ? null : `written outside the tool's folder: ${written.join(", ")}`;
    },
  },
  {
    name: "remote config: not JSON in KV",
    async send(context) {
      const kv = await new Kvm(context.operator).open(AGENT_CONFIG_BUCKET);
      await kv.put(`machine.${MACHINE}`, "{definitely not json");
    },
    expect: { status: "REJECTED", stream: "CONFIG_STATUS" },
  },
  {
    name: "remote config: 600 KB of tags",
    async send(context) {
      const kv = await new Kvm(context.operator).open(AGENT_CONFIG_BUCKET);
      const tags = Object.fromEntries(Array.from({ length: 6_000 }, (_, index) => [`tag${index}`, "v".repeat(90)]));
      await kv.put(`machine.${MACHINE}`, JSON.stringify({ revision: 1, tags }));
    },
    expect: { status: "REJECTED", stream: "CONFIG_STATUS" },
  },
  {
    name: "remote config: wrong types",
    async send(context) {
      const kv = await new Kvm(context.operator).open(AGENT_CONFIG_BUCKET);
      await kv.put(
        `machine.${MACHINE}`,
        JSON.stringify({ revision: 1, heartbeatSeconds: "soon", telemetrySchedule: 5 }),
      );
    },
    expect: { status: "REJECTED", stream: "CONFIG_STATUS" },
  },
];

async function outcomeOf(
  context: CaseContext,
  hostile: HostileCase,
  caseId: string,
  statusesBefore: number,
  deadlineMs: number,
  sentAtMs: number,
): Promise<string | null> {
  const expectation = hostile.expect;
  const outcome = await waitFor(
    `${hostile.name}: the agent's answer`,
    async (): Promise<{ problem: string | null } | undefined> => {
      if (context.agent.child.exitCode !== null || context.agent.child.signalCode !== null)
        return { problem: `the agent died: ${context.agent.output().slice(-400)}` };
      if ("settled" in expectation) {
        const reply = await context.operator
          .request(`machine.${MACHINE}.rpc.status`, "", { timeout: 3_000 })
          .catch(() => null);
        const commands = reply?.json<{
          commands?: { pending: number; running: number; lastCheckedAt: string | null };
        }>().commands;
        const settled =
          commands &&
          commands.pending === 0 &&
          commands.running === 0 &&
          commands.lastCheckedAt !== null &&
          Date.parse(commands.lastCheckedAt) > sentAtMs;
        return settled ? { problem: null } : undefined;
      }
      const statuses = await readStream(context.operator, expectation.stream);
      const ours = statuses.filter((message) => message.headers[EventHeader.causationId] === caseId);
      // KV documents carry no event id: their status is the newest one after the put.
      const candidates = ours.length > 0 ? ours : statuses.slice(statusesBefore);
      const body = candidates
        .map((message) => message.body as { state?: string; status?: string; error?: string | null })
        .find((candidate) => (candidate.state ?? candidate.status) === expectation.status);
      if (!body) return undefined;
      return {
        problem:
          (body.error ?? "").length > MAX_ECHOED_ERROR
            ? `the error echoes ${body.error?.length} characters of input`
            : null,
      };
    },
    deadlineMs,
    250,
  ).catch(() => ({
    problem: `no ${"settled" in expectation ? "settlement" : `${expectation.status} status`} within ${deadlineMs} ms`,
  }));
  return outcome.problem;
}

async function peakRssMb(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Math.round(Number(match[1]) / 1024) : null;
}

/** Sends every hostile input of the table to one real agent and checks each is refused cleanly. */
export function hostileInput(options: { cases?: readonly HostileCase[]; caseDeadlineMs: number }): FaultScenario {
  const table = options.cases ?? HOSTILE_CASES;
  return {
    name: "hostile-input",
    summary: `${table.length} kinds of bad input to a real agent: malformed, wrong checksum, hostile paths, archive bombs, a lying zip, a push through a link, oversized`,
    async run(): Promise<ScenarioResult> {
      const server = await startNatsServer();
      const operator = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const files = await startFileServer();
      const fleet = new AgentFleet(() => ({ EDGE_AGENT_NATS_URL: server.url, EDGE_AGENT_HEARTBEAT_SECONDS: "2" }));
      let root: string | null = null;
      try {
        const setup = await runCli(["dev-setup"], { EDGE_AGENT_NATS_URL: server.url });
        if (setup.code !== 0) throw new Error(`dev-setup failed: ${setup.stderr}`);
        const agent = await fleet.start(MACHINE);
        root = dirname(agent.dataDir);
        const context: CaseContext = { operator, files, agent };
        // Commands are only taken once the agent listens: wait for its announcement.
        await waitFor(
          "the agent's announcement (it listens)",
          async () => (await readStream(operator, "INSTALLED_AGENTS")).length > 0,
          30_000,
          200,
        );
        const failures: Array<{ case: string; problem: string }> = [];
        let survived = 0;
        for (const [index, hostile] of table.entries()) {
          const caseId = `hostile-${index}-${Date.now()}`;
          const stream = "stream" in hostile.expect ? hostile.expect.stream : null;
          const before = stream ? (await readStream(operator, stream)).length : 0;
          const sentAtMs = Date.now();
          const sendProblem = await hostile.send(context, caseId).then(
            () => null,
            (error: unknown) => `could not be sent: ${error instanceof Error ? error.message : String(error)}`,
          );
          const problem =
            sendProblem ??
            (await outcomeOf(context, hostile, caseId, before, options.caseDeadlineMs, sentAtMs)) ??
            (await hostile.verify?.(context)) ??
            null;
          if (problem) failures.push({ case: hostile.name, problem });
          else survived += 1;
        }
        const rssMb = await peakRssMb(agent.child.pid);
        // Bombs refused while memory balloons would still be a defect (it was 1.2-2.35 GB).
        if (rssMb !== null && rssMb > PEAK_RSS_BOUND_MB)
          failures.push({
            case: "peak memory over the whole table",
            problem: `${rssMb} MB, over ${PEAK_RSS_BOUND_MB} MB`,
          });
        const lastHandedOut = await fleet.settled(operator, 30_000);
        const unclean = await fleet.stopAll();
        const ledger = accountFor(await storedEvents(operator), { lastHandedOut });
        return {
          cases: table.length,
          survived:
            unclean.length > 0 || rssMb === null || rssMb > PEAK_RSS_BOUND_MB
              ? Math.min(survived, table.length - 1)
              : survived,
          lost: ledger.lost,
          duplicated: ledger.duplicated,
          reusedSequences: ledger.reusedSequences,
          events: ledger.stored,
          details: { failures, unclean, agentPeakRssMb: rssMb, peakRssBoundMb: PEAK_RSS_BOUND_MB },
        };
      } finally {
        await fleet.dispose();
        await files.close();
        await operator.close();
        await server.dispose();
        if (root) await rm(root, { recursive: true, force: true });
      }
    },
  };
}
