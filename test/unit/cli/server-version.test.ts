import { describe, expect, it } from "vitest";
import { NATS_SERVER_RELEASES } from "../../../scripts/nats-server-runtime.ts";
import { judgeServerVersion, NATS_SERVER_SUPPORT, parseServerVersion } from "../../../src/cli/doctor/server-version.ts";

describe("the nats-server version doctor meets", () => {
  it("reads the versions servers announce, and nothing else", () => {
    expect(parseServerVersion("2.15.1")).toEqual({ major: 2, minor: 15, patch: 1, prerelease: false, text: "2.15.1" });
    expect(parseServerVersion("v2.10.27")).toMatchObject({ major: 2, minor: 10, patch: 27, prerelease: false });
    expect(parseServerVersion("2.11.0-RC.2")).toMatchObject({ major: 2, minor: 11, patch: 0, prerelease: true });
    expect(parseServerVersion("2.12.1+build.5")).toMatchObject({ major: 2, minor: 12, patch: 1, prerelease: false });
    for (const text of [undefined, "", "2.10", "two", "2.10.x", "2.10.1 beta"])
      expect(parseServerVersion(text)).toBeNull();
  });

  it("fails a server older than 2.10 and says it is not supported, and what to do", () => {
    for (const version of ["2.9.10", "2.9.25", "2.2.0", "1.4.1", "v2.9.0"]) {
      const result = judgeServerVersion(version);
      expect(result, version).toMatchObject({ check: "server version", verdict: "FAIL" });
      expect(result.reason).toContain(`nats-server ${version} is not supported`);
      expect(result.reason).toContain("needs 2.10 or later");
      expect(result.action).toContain("upgrade nats-server to 2.15.1");
    }
  });

  it("warns on a 2.10 release older than the oldest tested one", () => {
    for (const version of ["2.10.0", "2.10.26", "2.10.27-RC.1"])
      expect(judgeServerVersion(version), version).toMatchObject({
        verdict: "WARN",
        reason: expect.stringContaining("older than the oldest release edge-agent is tested on 2.10.27"),
      });
  });

  it("passes every release from the oldest tested on, naming one newer than the newest tested", () => {
    for (const version of ["2.10.27", "2.10.29", "2.11.9", "2.14.0", "2.15.1"])
      expect(judgeServerVersion(version), version).toMatchObject({
        verdict: "PASS",
        reason: `nats-server ${version} is supported (tested on 2.10.27 to 2.15.1)`,
      });
    expect(judgeServerVersion("2.16.0")).toMatchObject({
      verdict: "PASS",
      reason: expect.stringContaining("newer than the newest tested (2.15.1)"),
    });
  });

  it("warns on a new major version, and on a version it cannot read", () => {
    expect(judgeServerVersion("3.0.0").verdict).toBe("WARN");
    expect(judgeServerVersion(undefined)).toMatchObject({ verdict: "WARN", reason: expect.stringContaining("null") });
    expect(judgeServerVersion("unknown").verdict).toBe("WARN");
  });

  it("names as tested exactly the releases the suite runs on", () => {
    expect(NATS_SERVER_SUPPORT.oldestTested).toBe(NATS_SERVER_RELEASES.oldest.version);
    expect(NATS_SERVER_SUPPORT.newestTested).toBe(NATS_SERVER_RELEASES.current.version);
  });
});
