import { describe, expect, it } from "vitest";
import {
  configKeyForMachine,
  defaultInboxPrefix,
  eventHeaderEntries,
  fleetSubjects,
  machineConsumers,
  machineSubjects,
  PLATFORM_STREAMS,
  ReservedMachineIdError,
  UnsafeSubjectTokenError,
} from "../../../src/contracts/index.ts";

describe("subjects", () => {
  it("builds the machine's subjects as docs/DESIGN.md names them", () => {
    const subjects = machineSubjects("m-1_A");
    expect(subjects.installedAgent).toBe("machine.m-1_A.installed-agent");
    expect(subjects.clientConnection).toBe("machine.m-1_A.client-connection");
    expect(subjects.toolInstallationStatus).toBe("machine.m-1_A.tool-installation.status");
    expect(subjects.rpcHealth).toBe("machine.m-1_A.rpc.health");
    expect(subjects.toolInstallationConsumer).toBe("machine_m-1_A_tool-installation_consumer");
    expect(fleetSubjects.toolUpdate("mesh")).toBe("machine.all.tool.mesh.update");
  });

  it.each(["a.b", "*", ">", "a b", "", "m\n1", "ü"])("refuses the unsafe token %j", (token) => {
    expect(() => machineSubjects(token)).toThrow(UnsafeSubjectTokenError);
    expect(() => fleetSubjects.toolUpdate(token)).toThrow(/not a safe subject token/);
  });

  it("refuses the fleet-wide id 'all' wherever a machine id becomes a subject, with a named error", () => {
    for (const build of [machineSubjects, machineConsumers, configKeyForMachine, defaultInboxPrefix]) {
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

  it("names each machine's consumers by one template, each bound to one filter", () => {
    const consumers = machineConsumers("m1");
    expect(consumers.toolUpdate).toEqual({
      stream: "TOOL_UPDATE",
      name: "machine_m1_tool-update_consumer",
      filterSubject: "machine.all.tool.*.update",
    });
    expect(consumers.configMachine).toEqual({
      stream: "KV_agent-config",
      name: "machine_m1_config_consumer",
      filterSubject: "$KV.agent-config.machine.m1",
    });
    expect(consumers.toolInstallation.name).toBe(machineSubjects("m1").toolInstallationConsumer);
    // No purpose holds '_': ids may, and the names of two machines must never coincide.
    for (const binding of Object.values(consumers)) expect(binding.name).toMatch(/^machine_m1_[a-z-]+_consumer$/);
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
