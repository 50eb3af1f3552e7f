import { describe, expect, it } from "vitest";
import {
  catchUpConsumerName,
  configKeyForMachine,
  defaultInboxPrefix,
  eventHeaderEntries,
  fleetSubjects,
  legacyMachineConsumers,
  machineFeeds,
  machineSubjects,
  PLATFORM_STREAMS,
  ReservedMachineIdError,
  toolUpdateFeed,
  UnsafeSubjectTokenError,
} from "../../../src/contracts/index.ts";

describe("subjects", () => {
  it("builds the machine's subjects as docs/DESIGN.md names them", () => {
    const subjects = machineSubjects("m-1_A");
    expect(subjects.installedAgent).toBe("machine.m-1_A.installed-agent");
    expect(subjects.clientConnection).toBe("machine.m-1_A.client-connection");
    expect(subjects.toolInstallationStatus).toBe("machine.m-1_A.tool-installation.status");
    expect(subjects.rpcHealth).toBe("machine.m-1_A.rpc.health");
    expect(fleetSubjects.toolUpdate("mesh")).toBe("machine.all.tool.mesh.update");
  });

  it.each(["a.b", "*", ">", "a b", "", "m\n1", "ü"])("refuses the unsafe token %j", (token) => {
    expect(() => machineSubjects(token)).toThrow(UnsafeSubjectTokenError);
    expect(() => fleetSubjects.toolUpdate(token)).toThrow(/not a safe subject token/);
  });

  it("refuses the fleet-wide id 'all' wherever a machine id becomes a subject, with a named error", () => {
    for (const build of [machineSubjects, machineFeeds, catchUpConsumerName, configKeyForMachine, defaultInboxPrefix]) {
      const error = (() => {
        try {
          build("all");
        } catch (failure) {
          return failure;
        }
        return null;
      })();
      expect(error).toBeInstanceOf(ReservedMachineIdError);
      expect(error).toMatchObject({
        code: "EDGE_RESERVED_MACHINE_ID",
        message: expect.stringMatching(/"all" is reserved: machine.all.\* subjects are fleet-wide/),
      });
    }
    expect(machineSubjects("All").heartbeat).toBe("machine.All.heartbeat");
  });

  it("reads each machine's commands through feeds of its own subjects, and only its own subjects as queues", () => {
    const feeds = machineFeeds("m1");
    expect(feeds.toolInstallation).toEqual({
      key: "tool-installation",
      stream: "TOOL_INSTALLATION",
      subject: "machine.m1.tool-installation",
      mode: "queue",
      start: "first",
    });
    expect(feeds.configDefaults).toMatchObject({
      stream: "KV_agent-config",
      subject: "$KV.agent-config.defaults",
      mode: "latest",
    });
    expect(toolUpdateFeed("mesh")).toEqual({
      key: "tool-update:mesh",
      stream: "TOOL_UPDATE",
      subject: "machine.all.tool.mesh.update",
      mode: "latest",
      start: "next",
    });
    for (const feed of Object.values(feeds).filter((each) => each.mode === "queue"))
      expect(feed.subject.startsWith("machine.m1.")).toBe(true);
    expect(new Set(Object.values(feeds).map((feed) => feed.key)).size).toBe(Object.values(feeds).length);
    // Earlier versions' names (taken over once) end in _consumer, the catch-up's in _reader: none equals another's.
    expect(catchUpConsumerName("m1")).toBe("machine_m1_reader");
    for (const consumer of legacyMachineConsumers("m1")) expect(consumer.name).toMatch(/^machine_m1_[a-z-]+_consumer$/);
    expect(fleetSubjects.toolOfUpdate("machine.all.tool.mesh.update")).toBe("mesh");
    expect(fleetSubjects.toolOfUpdate("machine.all.tool.mesh.other")).toBeNull();
    expect(fleetSubjects.toolOfUpdate("machine.m1.tool-installation")).toBeNull();
  });

  it("lists streams whose subjects never overlap (JetStream refuses overlaps)", () => {
    const all = PLATFORM_STREAMS.flatMap((stream) =>
      stream.subjects.map((subject) => ({ stream: stream.name, subject })),
    );
    const overlaps = (a: string, b: string): boolean => {
      const left = a.split(".");
      const right = b.split(".");
      if (left.length !== right.length) return false;
      return left.every((token, index) => token === "*" || right[index] === "*" || token === right[index]);
    };
    for (const a of all)
      for (const b of all)
        if (a !== b && a.stream !== b.stream)
          expect(overlaps(a.subject, b.subject), `${a.subject} vs ${b.subject}`).toBe(false);
  });
});

describe("event headers", () => {
  it("carries every docs/DESIGN.md header, with Nats-Msg-Id equal to the event id", () => {
    const headers = new Map(
      eventHeaderEntries({
        eventId: "e1",
        eventType: "hostname",
        machineId: "m1",
        timestamp: "t",
        correlationId: "c1",
        causationId: "cmd-9",
        schemaVersion: "1",
        sequence: 7,
      }),
    );
    expect(headers.get("Nats-Msg-Id")).toBe("e1");
    expect(headers.get("X-Event-ID")).toBe("e1");
    expect(headers.get("X-Sequence")).toBe("7");
    expect(headers.get("X-Causation-ID")).toBe("cmd-9");
    expect([...headers.keys()]).toEqual(
      expect.arrayContaining(["X-Event-Type", "X-Machine-ID", "X-Timestamp", "X-Correlation-ID", "X-Schema-Version"]),
    );
  });
});
