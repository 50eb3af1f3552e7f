import { describe, expect, it } from "vitest";
import {
  parseCpuTicks,
  parseMachineCpuTicks,
  parseMemoryKiB,
  readCpuTicks,
  readMemoryKiB,
} from "../../../bench/proc-stats.ts";

const STATUS = `Name:\tnode
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t 1201436 kB
VmHWM:\t   93120 kB
VmRSS:\t   88004 kB
RssAnon:\t   34560 kB
RssFile:\t   53444 kB
RssShmem:\t       0 kB
Threads:\t11
`;

/** Fields 14 and 15 (utime, stime) are 250 and 37; the command name is given in parentheses. */
const statOf = (command: string): string =>
  `4212 (${command}) S 4209 4209 19080 0 -1 4194304 102 0 0 0 250 37 0 0 20 0 11 0 4207451 3133440 416 18446744073709551615 0\n`;

describe("parseMemoryKiB", () => {
  it("reads resident, anonymous and file-backed KiB", () => {
    expect(parseMemoryKiB(STATUS)).toEqual({ rss: 88004, anon: 34560, file: 53444 });
  });

  it("names the missing line (a zombie has no memory lines)", () => {
    const zombie = "Name:\tnode\nState:\tZ (zombie)\nThreads:\t1\n";
    expect(() => parseMemoryKiB(zombie, "/proc/4212/status")).toThrow("proc-stats: no VmRSS in /proc/4212/status");
  });
});

describe("parseCpuTicks", () => {
  it("adds user and system ticks", () => {
    expect(parseCpuTicks(statOf("node"))).toBe(287);
  });

  it("counts fields from the last ') ', whatever the command name holds", () => {
    expect(parseCpuTicks(statOf("Web Content"))).toBe(287);
    // A name of its own choosing can look like the fields that follow it.
    expect(parseCpuTicks(statOf("x) R 1 2 3 4 5"))).toBe(287);
    expect(parseCpuTicks(statOf("(sd-pam)"))).toBe(287);
  });

  it("refuses a text that is not a stat line", () => {
    expect(() => parseCpuTicks("4212 (node)")).toThrow(/no command name/);
    expect(() => parseCpuTicks("4212 (node) S 1 2", "/proc/4212/stat")).toThrow(
      "proc-stats: no utime in /proc/4212/stat",
    );
  });
});

describe("parseMachineCpuTicks", () => {
  it("counts idle and iowait as not busy", () => {
    const stat =
      "cpu  3004931 0 1123207 4187663 22719 0 47876 0 0 0\ncpu0 1488413 0 550822 2126240 6160 0 22150 0 0 0\n";
    expect(parseMachineCpuTicks(stat)).toEqual({
      busy: 3004931 + 1123207 + 47876,
      total: 3004931 + 1123207 + 4187663 + 22719 + 47876,
    });
  });
});

describe("the readers", () => {
  it("read this very process", () => {
    expect(readMemoryKiB(process.pid).rss).toBeGreaterThan(0);
    expect(readCpuTicks(process.pid)).toBeGreaterThan(0);
  });
});
