import { describe, expect, it } from "vitest";
import { loadSettings, parseMetricsListen, SettingsError } from "../../../src/settings/index.ts";

const linuxUser = { platform: "linux", privileged: false } as const;

describe("metricsListen", () => {
  it.each([
    ["127.0.0.1:9464", { host: "127.0.0.1", port: 9464 }],
    ["127.5.6.7:1", { host: "127.5.6.7", port: 1 }],
    ["[::1]:9464", { host: "::1", port: 9464 }],
  ])("takes %s", (text, expected) => {
    expect(parseMetricsListen(text)).toEqual(expected);
  });

  it("takes off as no endpoint", () => {
    expect(parseMetricsListen("off")).toBeNull();
    expect(
      loadSettings({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: "/nonexistent", EDGE_AGENT_METRICS_LISTEN: "off" } })
        .settings.metricsListen,
    ).toBe("off");
  });

  it.each([
    ["0.0.0.0:9464", "is not a loopback IP"],
    ["10.0.0.1:9464", "is not a loopback IP"],
    ["localhost:9464", "is not a loopback IP"],
    ["[::]:9464", "is not a loopback IP"],
    ["127.0.0.1", "must be host:port"],
    ["127.0.0.1:70000", "not between 1 and 65535"],
  ])("refuses %s", (text, problem) => {
    expect(parseMetricsListen(text)).toContain(problem);
  });

  it("is off by default and refused by the settings with the name the operator used", () => {
    expect(
      loadSettings({ ...linuxUser, env: { EDGE_AGENT_CONFIG_DIR: "/nonexistent" } }).settings.metricsListen,
    ).toBeUndefined();
    expect(() =>
      loadSettings({
        ...linuxUser,
        env: { EDGE_AGENT_CONFIG_DIR: "/nonexistent" },
        flags: { "metrics-listen": "0.0.0.0:1" },
      }),
    ).toThrow(SettingsError);
    expect(() =>
      loadSettings({
        ...linuxUser,
        env: { EDGE_AGENT_CONFIG_DIR: "/nonexistent" },
        flags: { "metrics-listen": "0.0.0.0:1" },
      }),
    ).toThrow(/--metrics-listen/);
  });
});
