/**
 * Parsers for Linux /proc files: pure functions over text, so they are tested on fixed inputs.
 * Reading /proc costs a few microseconds and spawns nothing; systeminformation's equivalents
 * spawn processes for several of these (measured in bench/telemetry.ts).
 */

export interface CpuTimes {
  readonly busy: number;
  readonly total: number;
}

/** /proc/stat: the aggregate line and one per core, in clock ticks. */
export function parseProcStat(text: string): { total: CpuTimes; cores: CpuTimes[]; processesRunning: number | null } {
  let total: CpuTimes = { busy: 0, total: 0 };
  const cores: CpuTimes[] = [];
  let processesRunning: number | null = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("cpu")) {
      const [label, ...fields] = line.trim().split(/\s+/);
      const values = fields.map(Number);
      // user nice system idle iowait irq softirq steal (guest fields are already in user/nice).
      const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = values;
      const idleAll = idle + iowait;
      const sum = user + nice + system + idleAll + irq + softirq + steal;
      const times = { busy: sum - idleAll, total: sum };
      if (label === "cpu") total = times;
      else cores.push(times);
    } else if (line.startsWith("procs_running")) {
      processesRunning = Number(line.split(/\s+/)[1]);
    }
  }
  return { total, cores, processesRunning };
}

export function cpuPercent(previous: CpuTimes, current: CpuTimes): number {
  const total = current.total - previous.total;
  if (total <= 0) return 0;
  return clampPercent(((current.busy - previous.busy) / total) * 100);
}

function clampPercent(value: number): number {
  return Math.round(Math.min(100, Math.max(0, value)) * 100) / 100;
}

export function parseLoadAvg(text: string): { one: number; five: number; fifteen: number } {
  const [one = "0", five = "0", fifteen = "0"] = text.trim().split(/\s+/);
  return { one: Number(one), five: Number(five), fifteen: Number(fifteen) };
}

export function parseMeminfo(text: string): {
  totalBytes: number;
  usedBytes: number;
  availableBytes: number;
  swapTotalBytes: number;
  swapUsedBytes: number;
} {
  const kib = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^(\w+):\s+(\d+)/.exec(line);
    if (match?.[1] && match[2]) kib.set(match[1], Number(match[2]));
  }
  const bytes = (key: string): number => (kib.get(key) ?? 0) * 1024;
  const totalBytes = bytes("MemTotal");
  const availableBytes = kib.has("MemAvailable")
    ? bytes("MemAvailable")
    : bytes("MemFree") + bytes("Buffers") + bytes("Cached");
  const swapTotalBytes = bytes("SwapTotal");
  return {
    totalBytes,
    availableBytes,
    usedBytes: Math.max(0, totalBytes - availableBytes),
    swapTotalBytes,
    swapUsedBytes: Math.max(0, swapTotalBytes - bytes("SwapFree")),
  };
}

export interface InterfaceCounters {
  readonly rxBytes: number;
  readonly rxErrors: number;
  readonly rxDrops: number;
  readonly txBytes: number;
  readonly txErrors: number;
  readonly txDrops: number;
}

/** /proc/net/dev: per-interface counters (loopback left out: it is not the machine's traffic). */
export function parseNetDev(text: string): Map<string, InterfaceCounters> {
  const result = new Map<string, InterfaceCounters>();
  for (const line of text.split("\n").slice(2)) {
    const separator = line.indexOf(":");
    if (separator < 0) continue;
    const name = line.slice(0, separator).trim();
    if (name === "lo") continue;
    const fields = line
      .slice(separator + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    result.set(name, {
      rxBytes: fields[0] ?? 0,
      rxErrors: fields[2] ?? 0,
      rxDrops: fields[3] ?? 0,
      txBytes: fields[8] ?? 0,
      txErrors: fields[10] ?? 0,
      txDrops: fields[11] ?? 0,
    });
  }
  return result;
}

export interface DiskCounters {
  readonly reads: number;
  readonly readSectors: number;
  readonly writes: number;
  readonly writeSectors: number;
}

/** /proc/diskstats: whole disks only (no partitions, loop, ram or dm devices without I/O). */
export function parseDiskstats(text: string): Map<string, DiskCounters> {
  const result = new Map<string, DiskCounters>();
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const name = fields[2];
    if (!name || /^(loop|ram|zram|fd|sr)/.test(name)) continue;
    // Partitions: sda1, vda2, nvme0n1p1, mmcblk0p1.
    if (/^(sd|vd|xvd|hd)[a-z]+\d+$/.test(name) || /^(nvme\d+n\d+|mmcblk\d+)p\d+$/.test(name)) continue;
    const values = fields.slice(3).map(Number);
    const counters = {
      reads: values[0] ?? 0,
      readSectors: values[2] ?? 0,
      writes: values[4] ?? 0,
      writeSectors: values[6] ?? 0,
    };
    if (counters.reads === 0 && counters.writes === 0) continue;
    result.set(name, counters);
  }
  return result;
}

export const SECTOR_BYTES = 512;

/** Per-second rate of a counter; a counter that went backwards (reset, wrap) reads as 0, never negative. */
export function perSecond(previous: number, current: number, seconds: number): number {
  if (seconds <= 0 || current < previous) return 0;
  return Math.round(((current - previous) / seconds) * 100) / 100;
}

/** /proc/mounts: real, local filesystems worth reporting (no pseudo or network filesystems). */
export function parseMounts(text: string): Array<{ mount: string; fsType: string }> {
  const pseudo =
    /^(proc|sysfs|devtmpfs|devpts|tmpfs|cgroup2?|securityfs|pstore|bpf|debugfs|tracefs|configfs|fusectl|mqueue|hugetlbfs|autofs|binfmt_misc|squashfs|nsfs|ramfs|rpc_pipefs|efivarfs|selinuxfs|fuse\..*|nfs4?|cifs|smb3|sshfs|9p|ceph|glusterfs)$/;
  const seen = new Set<string>();
  const mounts: Array<{ mount: string; fsType: string }> = [];
  for (const line of text.split("\n")) {
    const [device, rawMount, fsType] = line.split(" ");
    if (!device || !rawMount || !fsType || pseudo.test(fsType)) continue;
    // /proc/mounts escapes spaces and tabs in paths as octal.
    const mount = rawMount.replace(/\\(\d{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
    if (seen.has(mount)) continue;
    seen.add(mount);
    mounts.push({ mount, fsType });
  }
  return mounts;
}
