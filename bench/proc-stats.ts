import { readFileSync } from "node:fs";

/**
 * What the benchmarks read about a process (and the machine) from Linux's /proc: resident memory and
 * CPU time. The readers are synchronous on purpose: /proc files are made by the kernel on read, never
 * wait on a disk, and a sampler can then sum many processes in one expression.
 */

/** USER_HZ: the unit of the CPU times in /proc/<pid>/stat and /proc/stat (100 on every Linux ABI). */
export const CLOCK_TICKS_PER_SECOND = 100;

/**
 * Resident memory, and its two parts: anonymous (the process's own heap and stacks) and file
 * (clean pages of the executable, shared with the page cache; how many are mapped depends on the
 * kernel's page-cache folio sizes, so it moves between runs and machines).
 */
export interface MemoryKiB {
  readonly rss: number;
  readonly anon: number;
  readonly file: number;
}

/** Reads `VmRSS`, `RssAnon` and `RssFile` from a /proc/<pid>/status text; `source` names it in errors. */
export function parseMemoryKiB(status: string, source = "status"): MemoryKiB {
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status);
    // A zombie or a kernel thread has no memory lines at all.
    if (!match?.[1]) throw new Error(`proc-stats: no ${name} in ${source}`);
    return Number(match[1]);
  };
  return { rss: field("VmRSS"), anon: field("RssAnon"), file: field("RssFile") };
}

/**
 * User plus system CPU ticks (fields 14 and 15) from a /proc/<pid>/stat text. The command name
 * (field 2, in parentheses) may hold spaces and `) ` itself, so the fields are counted from the last `) `.
 */
export function parseCpuTicks(stat: string, source = "stat"): number {
  const nameEnd = stat.lastIndexOf(") ");
  if (nameEnd < 0) throw new Error(`proc-stats: no command name in ${source}`);
  // From field 3 (state) on: utime and stime are fields 14 and 15.
  const fields = stat
    .slice(nameEnd + 2)
    .trim()
    .split(" ");
  const ticks = (field: string | undefined, name: string): number => {
    if (field === undefined || !/^\d+$/.test(field)) throw new Error(`proc-stats: no ${name} in ${source}`);
    return Number(field);
  };
  return ticks(fields[11], "utime") + ticks(fields[12], "stime");
}

/** The whole machine's CPU ticks since boot, from the `cpu` line of /proc/stat: busy, and all (busy + idle + iowait). */
export function parseMachineCpuTicks(stat: string): { busy: number; total: number } {
  const line = stat.split("\n").find((candidate) => candidate.startsWith("cpu "));
  if (!line) throw new Error("proc-stats: no cpu line in /proc/stat");
  // user nice system idle iowait irq softirq steal guest guest_nice
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  const total = ticks.reduce((sum, value) => sum + value, 0);
  return { busy: total - idle, total };
}

export function readMemoryKiB(pid: number): MemoryKiB {
  const path = `/proc/${pid}/status`;
  return parseMemoryKiB(readFileSync(path, "utf8"), path);
}

export function readCpuTicks(pid: number): number {
  const path = `/proc/${pid}/stat`;
  return parseCpuTicks(readFileSync(path, "utf8"), path);
}

export function readMachineCpuTicks(): { busy: number; total: number } {
  return parseMachineCpuTicks(readFileSync("/proc/stat", "utf8"));
}
