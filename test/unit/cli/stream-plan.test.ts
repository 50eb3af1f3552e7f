import { describe, expect, it } from "vitest";
import { wantedStreams } from "../../../src/cli/dev-setup-command.ts";
import { planStreams, type StreamPlan } from "../../../src/cli/stream-plan.ts";
import { PLATFORM_STREAMS, partitionTransform } from "../../../src/contracts/index.ts";
import { asServerReports, OPENFRAME_STREAMS } from "../../fixtures/openframe/streams.ts";

const SECOND_NS = 1_000_000_000;
const planFor = (plans: StreamPlan[], name: string): StreamPlan => {
  const plan = plans.find((candidate) => candidate.name === name);
  if (!plan) throw new Error(`no plan for ${name}`);
  return plan;
};

describe("planning streams: only ever add to what a server has", () => {
  it("on OpenFrame's 7 streams, keeps their wider subjects, only lets the command streams answer direct gets and TTLs, and creates ours", () => {
    const existing = OPENFRAME_STREAMS.map((stream) => asServerReports({ ...stream, subjects: [...stream.subjects] }));
    const plans = planStreams(wantedStreams("2.15.1"), existing);
    // machine.*.tool.*.update already covers machine.all.tool.*.update: nothing to add, nothing narrowed;
    // agents read its newest message by direct get, and a command may carry its own TTL.
    expect(planFor(plans, "TOOL_UPDATE")).toMatchObject({
      action: "update",
      config: { allow_direct: true, allow_msg_ttl: true },
      changes: ["allow_direct switched on", "allow_msg_ttl switched on"],
      notes: [],
    });
    expect(planFor(plans, "INSTALLED_AGENTS")).toMatchObject({ action: "keep", config: {} });
    const commandStreams = new Set(PLATFORM_STREAMS.filter((stream) => stream.commands).map((stream) => stream.name));
    for (const stream of OPENFRAME_STREAMS)
      expect(planFor(plans, stream.name).action).toBe(commandStreams.has(stream.name) ? "update" : "keep");
    // On 2.10, which has no per-message TTL, only direct gets are switched on.
    expect(planFor(planStreams(wantedStreams("2.10.27"), existing), "TOOL_UPDATE").changes).toEqual([
      "allow_direct switched on",
    ]);
    const created = plans.filter((plan) => plan.action === "create").map((plan) => plan.name);
    expect(created.sort()).toEqual(
      PLATFORM_STREAMS.map((stream) => stream.name)
        .filter((name) => !OPENFRAME_STREAMS.some((stream) => stream.name === name))
        .sort(),
    );
    expect(planFor(plans, "TELEMETRY")).toMatchObject({
      config: { name: "TELEMETRY", subjects: ["machine.*.telemetry", "machine.*.outbox"], storage: "file" },
      changes: ["created with subjects machine.*.telemetry, machine.*.outbox"],
    });
  });

  it("adds a missing subject and keeps the ones there", () => {
    const existing = [asServerReports({ name: "INSTALLED_AGENTS", subjects: ["user.*.installed-agent"] })];
    const plan = planFor(planStreams(wantedStreams("2.15.1"), existing), "INSTALLED_AGENTS");
    expect(plan.action).toBe("update");
    expect(plan.config).toEqual({ subjects: ["user.*.installed-agent", "machine.*.installed-agent"] });
    expect(plan.changes).toEqual(["subjects added: machine.*.installed-agent (kept: user.*.installed-agent)"]);
  });

  it("never lowers a limit: raises only what is below the wanted, and unlimited stays unlimited", () => {
    const wanted = [
      { name: "S", subjects: ["s.>"], duplicate_window: 120 * SECOND_NS, max_bytes: 1_000, max_age: 3_600 * SECOND_NS },
    ];
    const generous = asServerReports({
      name: "S",
      subjects: ["s.>"],
      duplicate_window: 600 * SECOND_NS,
      max_bytes: 10_000,
      max_age: 0,
    });
    expect(planStreams(wanted, [generous])[0]).toMatchObject({ action: "keep", config: {}, changes: [] });

    const tight = asServerReports({
      name: "S",
      subjects: ["s.>"],
      duplicate_window: 30 * SECOND_NS,
      max_bytes: 100,
      max_age: 1_800 * SECOND_NS,
    });
    const raised = planStreams(wanted, [tight])[0];
    expect(raised?.config).toEqual({ max_bytes: 1_000, max_age: 3_600 * SECOND_NS, duplicate_window: 120 * SECOND_NS });
    expect(raised?.changes).toEqual([
      "max_age raised from 1800000000000 to 3600000000000",
      "max_bytes raised from 100 to 1000",
      "duplicate_window raised from 30 s to 120 s",
    ]);

    // Unlimited wanted over a limit: raised to unlimited.
    const unlimited = planStreams([{ name: "S", subjects: ["s.>"], max_bytes: -1 }], [tight])[0];
    expect(unlimited?.config).toEqual({ max_bytes: -1 });
  });

  it("keeps the duplicate window within a short max_age, and says so", () => {
    const existing = asServerReports({ name: "S", subjects: ["s.>"], max_age: 60 * SECOND_NS, duplicate_window: 0 });
    const plan = planStreams([{ name: "S", subjects: ["s.>"], duplicate_window: 120 * SECOND_NS }], [existing])[0];
    expect(plan?.action).toBe("keep");
    expect(plan?.notes).toEqual(["duplicate_window kept within max_age (60 s), under the 120 s wanted"]);
  });

  it("leaves a subject another stream captures, and what cannot change, saying why", () => {
    const existing = [
      asServerReports({ name: "OTHER", subjects: ["machine.>"] }),
      asServerReports({ name: "S", subjects: ["s.a"], storage: "memory" }),
    ];
    const [update, create] = planStreams(
      [
        { name: "S", subjects: ["s.a", "machine.*.x"], storage: "file", allow_direct: true },
        { name: "NEW", subjects: ["machine.*.y"] },
      ],
      existing,
    );
    expect(update).toMatchObject({
      action: "update",
      config: { allow_direct: true },
      changes: ["allow_direct switched on"],
      notes: [
        "subject machine.*.x not added: stream OTHER already captures it",
        'storage is "memory", "file" wanted: left as it is',
      ],
    });
    expect(create).toMatchObject({
      action: "keep",
      notes: ["subject machine.*.y not added: stream OTHER already captures it", "not created"],
    });
  });

  it("partitions an unpartitioned TELEMETRY, never changes a count or a transform of someone else's", () => {
    const plain = asServerReports({ name: "TELEMETRY", subjects: ["machine.*.telemetry", "machine.*.outbox"] });
    const wanted = wantedStreams("2.10.27", { telemetryPartitions: 4 });
    const partition = planFor(planStreams(wanted, [plain]), "TELEMETRY");
    expect(partition).toMatchObject({ action: "update", config: { subject_transform: partitionTransform(4) } });
    expect(partition.changes).toEqual([
      "partitioned into 4 (messages stored before keep their subjects; the bridge bridges them before any partition)",
    ]);
    const four = asServerReports({ ...plain, subject_transform: partitionTransform(4) });
    expect(planFor(planStreams(wanted, [four]), "TELEMETRY")).toMatchObject({ action: "keep", notes: [] });
    const eight = planFor(planStreams(wantedStreams("2.10.27", { telemetryPartitions: 8 }), [four]), "TELEMETRY");
    expect(eight).toMatchObject({ action: "keep", config: {} });
    expect(eight.notes[0]).toContain("partitioned into 4, 8 wanted: left as it is");
    const none = planFor(planStreams(wantedStreams("2.10.27"), [four]), "TELEMETRY");
    expect(none).toMatchObject({ action: "keep", config: {} });
    expect(none.notes[0]).toContain("never unpartitions");
    const foreign = asServerReports({ ...plain, subject_transform: { src: ">", dest: "other.>" } });
    const left = planFor(planStreams(wanted, [foreign]), "TELEMETRY");
    expect(left).toMatchObject({ action: "keep", config: {} });
    expect(left.notes[0]).toContain("is not a partitioning of ours");
  });
});
