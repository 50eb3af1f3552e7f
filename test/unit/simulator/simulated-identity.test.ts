import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fleetSettingsTemplate, simulatedAgentSettings, simulatedMachineId } from "../../../src/simulator/index.ts";

describe("simulated identities", () => {
  it("names agents by index, the same on every start, in start order", () => {
    expect(simulatedMachineId(0)).toBe("sim-000000");
    expect(simulatedMachineId(42)).toBe("sim-000042");
    expect(simulatedMachineId(999_999)).toBe("sim-999999");
    for (const bad of [-1, 1.5, 1_000_000, Number.NaN]) expect(() => simulatedMachineId(bad)).toThrow(RangeError);
  });

  it("gives each agent its own data and config dirs under the root, and never a shared inbox prefix", () => {
    const template = {
      ...fleetSettingsTemplate("nats://127.0.0.1:4222"),
      inboxPrefix: "shared.inbox",
      machineId: "template",
    };
    const settings = simulatedAgentSettings(template, "/fleet", 7);
    expect(settings).toMatchObject({
      machineId: "sim-000007",
      dataDir: join("/fleet", "sim-000007"),
      configDir: join("/fleet", "sim-000007", "config"),
      natsServers: ["nats://127.0.0.1:4222"],
    });
    expect(settings.inboxPrefix).toBeUndefined();
    expect(template.inboxPrefix).toBe("shared.inbox");
  });
});
