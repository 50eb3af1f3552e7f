import { describe, expect, it } from "vitest";
import {
  cpuPercent,
  parseDiskstats,
  parseLoadAvg,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parseProcStat,
  perSecond,
} from "../../../src/telemetry/proc-parsers.ts";

describe("/proc parsers", () => {
  it("computes CPU busy percent from two /proc/stat readings, total and per core", () => {
    const before = parseProcStat(
      "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\ncpu1 50 0 50 400 0 0 0 0 0 0\nprocs_running 3\n",
    );
    const after = parseProcStat(
      "cpu  150 0 150 900 0 0 0 0 0 0\ncpu0 100 0 100 400 0 0 0 0 0 0\ncpu1 50 0 50 500 0 0 0 0 0 0\n",
    );
    expect(cpuPercent(before.total, after.total)).toBe(50);
    expect(after.cores.map((core, index) => cpuPercent(before.cores[index] ?? core, core))).toEqual([100, 0]);
    expect(before.processesRunning).toBe(3);
    expect(cpuPercent(after.total, after.total)).toBe(0);
  });

  it("counts iowait as idle and steal as busy", () => {
    const before = parseProcStat("cpu  0 0 0 0 0 0 0 0\n");
    const after = parseProcStat("cpu  0 0 0 50 50 0 0 100\n");
    expect(cpuPercent(before.total, after.total)).toBe(50);
  });

  it("reads load averages and memory, with used = total - available", () => {
    expect(parseLoadAvg("0.51 0.45 0.26 1/93 11346\n")).toEqual({ one: 0.51, five: 0.45, fifteen: 0.26 });
    const memory = parseMeminfo(
      "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nSwapTotal: 200 kB\nSwapFree: 50 kB\n",
    );
    expect(memory).toEqual({
      totalBytes: 1_024_000,
      availableBytes: 614_400,
      usedBytes: 409_600,
      swapTotalBytes: 204_800,
      swapUsedBytes: 153_600,
    });
  });

  it("turns network counters into per-second rates and leaves loopback out", () => {
    const header =
      "Inter-|   Receive\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";
    const before = parseNetDev(
      `${header}    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: 1000 10 1 2 0 0 0 0 5000 20 0 1 0 0 0 0\n`,
    );
    const after = parseNetDev(`${header}  eth0: 3000 30 3 2 0 0 0 0 5500 25 0 1 0 0 0 0\n`);
    expect([...before.keys()]).toEqual(["eth0"]);
    const [a, b] = [before.get("eth0"), after.get("eth0")];
    expect(perSecond(a?.rxBytes ?? 0, b?.rxBytes ?? 0, 2)).toBe(1000);
    expect(perSecond(a?.txBytes ?? 0, b?.txBytes ?? 0, 2)).toBe(250);
    expect(perSecond(a?.rxErrors ?? 0, b?.rxErrors ?? 0, 2)).toBe(1);
    // A counter that went backwards (interface reset) is never a negative rate.
    expect(perSecond(5000, 10, 2)).toBe(0);
  });

  it("keeps whole disks with I/O, not partitions or loop devices", () => {
    const disks = parseDiskstats(
      [
        "   7       0 loop0 5 0 0 0 0 0 0 0 0 0 0",
        " 253       0 vda 100 0 2000 0 50 0 800 0 0 0 0",
        " 253       1 vda1 90 0 1900 0 50 0 800 0 0 0 0",
        " 259       0 nvme0n1 10 0 80 0 0 0 0 0 0 0 0",
        " 259       1 nvme0n1p1 10 0 80 0 0 0 0 0 0 0 0",
        "   8       0 sdb 0 0 0 0 0 0 0 0 0 0 0",
      ].join("\n"),
    );
    expect([...disks.keys()]).toEqual(["vda", "nvme0n1"]);
    expect(disks.get("vda")).toEqual({ reads: 100, readSectors: 2000, writes: 50, writeSectors: 800 });
  });

  it("lists real filesystems once each, decoding escaped paths, skipping pseudo and network ones", () => {
    const mounts = parseMounts(
      [
        "overlay / overlay rw 0 0",
        "proc /proc proc rw 0 0",
        "/dev/vda1 /data ext4 rw 0 0",
        "/dev/vda1 /data ext4 rw 0 0",
        "/dev/vdb1 /mnt/my\\040disk xfs rw 0 0",
        "server:/export /mnt/nfs nfs4 rw 0 0",
        "tmpfs /run tmpfs rw 0 0",
      ].join("\n"),
    );
    expect(mounts).toEqual([
      { mount: "/", fsType: "overlay" },
      { mount: "/data", fsType: "ext4" },
      { mount: "/mnt/my disk", fsType: "xfs" },
    ]);
  });
});
