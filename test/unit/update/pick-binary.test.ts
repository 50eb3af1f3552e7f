import { describe, expect, it } from "vitest";
import type { DownloadConfiguration } from "../../../src/contracts/index.ts";
import { pickBinaryFor } from "../../../src/update/client-update-handler.ts";

const entry = (os: "linux" | "windows" | "macos", name: string): DownloadConfiguration => ({
  os,
  fileName: name,
  agentFileName: null,
  link: `https://downloads.example/${name}`,
  sha256: null,
  size: null,
  bundleId: null,
  serviceName: null,
  installationType: null,
});

describe("choosing the binary of a client-update for this machine", () => {
  it("takes the one entry for this OS", () => {
    expect(
      pickBinaryFor([entry("windows", "edge-agent.exe"), entry("linux", "edge-agent")], "linux", "x64")?.fileName,
    ).toBe("edge-agent");
  });

  it("picks by architecture when an OS has several, under any of its usual names", () => {
    const list = [entry("linux", "edge-agent-linux-aarch64"), entry("linux", "edge-agent-linux-amd64")];
    expect(pickBinaryFor(list, "linux", "x64")?.fileName).toBe("edge-agent-linux-amd64");
    expect(pickBinaryFor(list, "linux", "arm64")?.fileName).toBe("edge-agent-linux-aarch64");
  });

  it("finds nothing rather than guess: no entry for the OS, or several and none for this architecture", () => {
    expect(pickBinaryFor([entry("windows", "edge-agent.exe")], "linux", "x64")).toBeNull();
    expect(pickBinaryFor([entry("linux", "edge-agent-a"), entry("linux", "edge-agent-b")], "linux", "x64")).toBeNull();
    // "x64" inside a longer word is not the architecture.
    expect(
      pickBinaryFor([entry("linux", "edge-agent-x64foo"), entry("linux", "edge-agent-arm64")], "linux", "x64"),
    ).toBeNull();
  });
});
