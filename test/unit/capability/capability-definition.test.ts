import { describe, expect, it } from "vitest";
import {
  AGENT_ONLY_SETTINGS,
  type Capability,
  type CapabilityContext,
  type CapabilitySetting,
  CapabilityWiringError,
  defineCapability,
  ResolvedContributions,
  settingsSlice,
} from "../../../src/capability/index.ts";
import { defaultSettings } from "../../../src/settings/index.ts";

const settings = {
  ...defaultSettings("linux", { HOME: "/home/probe" }, false),
  auth: { user: "agent", password: "the password" },
  tls: { keyFile: "/keys/agent.key" },
};

describe("a capability's settings: the slice it declares, never credentials", () => {
  it("is given exactly the settings it lists, as a frozen copy", () => {
    const slice = settingsSlice(settings, ["dataDir", "toolPolicy"], "probe");
    expect(Object.keys(slice).sort()).toEqual(["dataDir", "toolPolicy"]);
    expect(slice.toolPolicy).toEqual(settings.toolPolicy);
    expect(Object.isFrozen(slice)).toBe(true);
    expect(JSON.stringify(slice)).not.toContain("the password");
  });

  it("refuses credentials, the identity the agent resolves and unknown names, naming the capability", () => {
    for (const key of [...AGENT_ONLY_SETTINGS, "noSuchSetting"]) {
      const declare = () => settingsSlice(settings, [key as CapabilitySetting], "probe");
      expect(declare).toThrow(CapabilityWiringError);
      expect(declare).toThrow(`capability probe declares the setting ${JSON.stringify(key)}`);
    }
    try {
      settingsSlice(settings, ["auth" as CapabilitySetting], "probe");
    } catch (error) {
      expect((error as CapabilityWiringError).code).toBe("EDGE_CAPABILITY_WIRING");
    }
  });

  it("does not compile when a capability reads a setting it did not declare, or declares a credential (tsc checks the lines marked)", () => {
    const declared = defineCapability({
      name: "probe",
      settings: ["dataDir"],
      create: (context) => {
        // @ts-expect-error toolPolicy is not in the slice this capability declared
        const undeclared: unknown = context.settings.toolPolicy;
        return { status: () => ({ dataDir: context.settings.dataDir, undeclared }) };
      },
    });
    const credential = defineCapability({
      name: "probe",
      // @ts-expect-error the NATS credentials are no capability's
      settings: ["auth"],
      create: () => ({}),
    });
    const wider = defineCapability({
      name: "probe",
      settings: ["dataDir"],
      // @ts-expect-error a create that reads more than the declared settings does not fit them
      create: (context: CapabilityContext<"dataDir" | "toolPolicy">): Capability => ({
        status: () => context.settings.toolPolicy,
      }),
    });
    expect([declared.settings, credential.settings, wider.settings]).toEqual([["dataDir"], ["auth"], ["dataDir"]]);
  });
});

describe("what capabilities offer each other: resolved once, before any starts", () => {
  const endpoint = { name: "health" as const, handle: () => "ok" };
  const applier = { name: "probe", apply: () => undefined };
  const offering: Capability[] = [{ rpcEndpoints: [endpoint] }, { appliers: [applier] }, {}];

  it("throws when read while the capabilities are still being made, never answering with a partial list", () => {
    const contributions = new ResolvedContributions();
    expect(() => contributions.read()).toThrow(CapabilityWiringError);
    expect(() => contributions.read()).toThrow("while the capabilities were being made");
  });

  it("holds every capability's offers in list order once resolved, frozen, and is resolved only once", () => {
    const contributions = new ResolvedContributions();
    contributions.resolve(offering);
    expect(contributions.read()).toEqual({ appliers: [applier], pushedFileTargets: [], rpcEndpoints: [endpoint] });
    expect(Object.isFrozen(contributions.read().appliers)).toBe(true);
    expect(() => contributions.resolve(offering)).toThrow("resolved once");
  });
});
