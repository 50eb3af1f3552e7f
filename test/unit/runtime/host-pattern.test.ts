import { describe, expect, it } from "vitest";
import { hostAllowed, hostPatternsOf, parseHostPattern } from "../../../src/runtime/host-pattern.ts";

describe("allowed download hosts", () => {
  it.each([
    ["https://github.com/a", ["github.com"], true],
    ["https://GitHub.com/a", ["GITHUB.COM"], true],
    ["https://api.github.com/a", ["github.com"], false],
    ["https://evilgithub.com/a", ["github.com"], false],
    ["https://release-assets.githubusercontent.com/x", ["*.githubusercontent.com"], true],
    ["https://a.b.githubusercontent.com/x", ["*.githubusercontent.com"], true],
    ["https://githubusercontent.com/x", ["*.githubusercontent.com"], false],
    ["https://xgithubusercontent.com/x", ["*.githubusercontent.com"], false],
    ["https://10.0.0.5:8443/x", ["10.0.0.5:8443"], true],
    ["https://10.0.0.5/x", ["10.0.0.5:8443"], false],
    ["https://10.0.0.5/x", ["10.0.0.5:443"], true],
    ["https://10.0.0.5:9000/x", ["10.0.0.5"], true],
    ["https://[fd00::1]/x", ["[fd00::1]"], true],
    ["https://github.com.evil.example/x", ["github.com"], false],
  ])("%s against %j: %s", (url, entries, allowed) => {
    expect(hostAllowed(new URL(url), hostPatternsOf(entries))).toBe(allowed);
  });

  it.each([
    ["https://github.com", /not a host/],
    ["github.com/releases", /not a host/],
    ["*", /not a host/],
    ["*.com", /a domain below a top-level one/],
    ["git*hub.com", /not a host name/],
    ["github.com:0", /a port is 1 to 65535/],
    ["github.com:70000", /a port is 1 to 65535/],
    ["*.[fd00::1]", /not an address/],
    ["", /not a host/],
  ])("refuses the entry %j", (entry, message) => {
    const parsed = parseHostPattern(entry);
    expect(typeof parsed).toBe("string");
    expect(parsed).toMatch(message);
  });
});
