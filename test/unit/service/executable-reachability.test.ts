import { describe, expect, it } from "vitest";
import {
  executableReachability,
  type PathEntry,
  pathsHiddenByUnit,
  type ServiceAccount,
} from "../../../src/service/executable-reachability.ts";
import { SYSTEMD_UNIT_TEMPLATE } from "../../../src/service/unit-template.ts";

const ROOT = 0;
const SERVICE_UID = 998;
const SERVICE_GID = 997;
const dir = (path: string, mode: number, uid = ROOT, gid = ROOT): PathEntry => ({
  path,
  mode,
  uid,
  gid,
  isDirectory: true,
});
const file = (path: string, mode: number, uid = ROOT, gid = ROOT): PathEntry => ({
  path,
  mode,
  uid,
  gid,
  isDirectory: false,
});

const existing: ServiceAccount = { name: "edge-agent", uid: SERVICE_UID, gids: [SERVICE_GID] };
/** install-service creates the account later: it owns nothing and is in no group yet. */
const notYetCreated: ServiceAccount = { name: "edge-agent", uid: undefined, gids: [] };
const hidden = pathsHiddenByUnit(SYSTEMD_UNIT_TEMPLATE);

describe("whether the service user can start the executable", () => {
  it("reads what the shipped unit hides: ProtectHome's and PrivateTmp's paths", () => {
    expect(hidden.map(({ path, directive }) => `${path} ${directive}`)).toEqual([
      "/home ProtectHome=yes",
      "/root ProtectHome=yes",
      "/run/user ProtectHome=yes",
      "/tmp PrivateTmp=yes",
      "/var/tmp PrivateTmp=yes",
    ]);
    expect(pathsHiddenByUnit("ProtectHome=read-only\nPrivateTmp=no\n")).toEqual([]);
  });

  it("accepts /usr/local/bin/edge-agent, 0755 all the way, for an account that exists or not", () => {
    const chain = [
      dir("/", 0o755),
      dir("/usr", 0o755),
      dir("/usr/local", 0o755),
      dir("/usr/local/bin", 0o755),
      file("/usr/local/bin/edge-agent", 0o755),
    ];
    expect(executableReachability(chain, existing, hidden)).toEqual({ reachable: true });
    expect(executableReachability(chain, notYetCreated, hidden)).toEqual({ reachable: true });
  });

  it("refuses an executable under /root: the unit hides it, whatever its modes", () => {
    const chain = [dir("/", 0o755), dir("/root", 0o755), file("/root/edge-agent-linux-x64", 0o755)];
    expect(executableReachability(chain, existing, hidden)).toEqual({
      reachable: false,
      reason: "/root/edge-agent-linux-x64 is under /root, which the unit's ProtectHome=yes hides from the service",
    });
    // Without that hardening, /root's usual 0700 still stops it.
    const usual = [dir("/", 0o755), dir("/root", 0o700), file("/root/edge-agent-linux-x64", 0o755)];
    expect(executableReachability(usual, existing, [])).toEqual({
      reachable: false,
      reason: "/root (mode 0700, owner 0:0) cannot be entered by the service user edge-agent",
    });
  });

  it("refuses /tmp under PrivateTmp, not a look-alike path", () => {
    expect(
      executableReachability([dir("/", 0o755), dir("/tmp", 0o1777), file("/tmp/edge-agent", 0o755)], existing, hidden),
    ).toMatchObject({ reachable: false });
    expect(
      executableReachability(
        [dir("/", 0o755), dir("/tmpfiles", 0o755), file("/tmpfiles/edge-agent", 0o755)],
        existing,
        hidden,
      ),
    ).toEqual({ reachable: true });
  });

  it("uses the owner's, the group's or the others' bits, whichever class the account is in", () => {
    const chainThrough = (middle: PathEntry): PathEntry[] => [
      dir("/", 0o755),
      middle,
      file(`${middle.path}/edge-agent`, 0o755),
    ];
    // Group-searchable only, and the account is in the group.
    expect(executableReachability(chainThrough(dir("/opt", 0o750, ROOT, SERVICE_GID)), existing)).toEqual({
      reachable: true,
    });
    expect(executableReachability(chainThrough(dir("/opt", 0o750, ROOT, SERVICE_GID)), notYetCreated)).toMatchObject({
      reachable: false,
    });
    // Owned by the account with no owner bits: others' bits do not apply to the owner.
    expect(executableReachability(chainThrough(dir("/opt", 0o075, SERVICE_UID, ROOT)), existing)).toMatchObject({
      reachable: false,
    });
    expect(executableReachability(chainThrough(dir("/opt", 0o700, SERVICE_UID, ROOT)), existing)).toEqual({
      reachable: true,
    });
    // Readable but not searchable.
    expect(executableReachability(chainThrough(dir("/opt", 0o744)), existing)).toEqual({
      reachable: false,
      reason: "/opt (mode 0744, owner 0:0) cannot be entered by the service user edge-agent",
    });
  });

  it("refuses a file the account may not execute, and a directory in its place", () => {
    const root = dir("/", 0o755);
    expect(executableReachability([root, file("/edge-agent", 0o750)], existing)).toEqual({
      reachable: false,
      reason: "/edge-agent (mode 0750, owner 0:0) is not executable by the service user edge-agent",
    });
    expect(executableReachability([root, file("/edge-agent", 0o750, ROOT, SERVICE_GID)], existing)).toEqual({
      reachable: true,
    });
    expect(executableReachability([root, dir("/edge-agent", 0o755)], existing)).toMatchObject({ reachable: false });
  });
});
