import { readdir, readFile, statfs } from "node:fs/promises";
import type { Clock } from "../runtime/index.ts";
import type { Collector, SamplePart } from "./collector.ts";
import {
  type CpuTimes,
  cpuPercent,
  type DiskCounters,
  type InterfaceCounters,
  parseDiskstats,
  parseLoadAvg,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parseProcStat,
  perSecond,
  SECTOR_BYTES,
} from "./proc-parsers.ts";

/** Where /proc lives: injectable so tests can point collectors at fixture files. */
export interface LinuxCollectorOptions {
  readonly procRoot?: string;
  readonly clock: Clock;
}

export function linuxCollectors(options: LinuxCollectorOptions): Collector[] {
  const proc = options.procRoot ?? "/proc";
  const read = (file: string): Promise<string> => readFile(`${proc}/${file}`, "utf8");
  const { clock } = options;

  let previousCpu: { total: CpuTimes; cores: CpuTimes[] } | null = null;
  const cpu: Collector = {
    name: "cpu",
    async collect() {
      const current = parseProcStat(await read("stat"));
      const previous = previousCpu;
      previousCpu = current;
      if (!previous) return { cpu: null };
      return {
        cpu: {
          totalPercent: cpuPercent(previous.total, current.total),
          perCorePercent: current.cores.map((core, index) => cpuPercent(previous.cores[index] ?? core, core)),
        },
      };
    },
  };

  const load: Collector = { name: "load", collect: async () => ({ load: parseLoadAvg(await read("loadavg")) }) };
  const memory: Collector = { name: "memory", collect: async () => ({ memory: parseMeminfo(await read("meminfo")) }) };
  const uptime: Collector = {
    name: "uptime",
    collect: async () => ({ uptimeSeconds: Number((await read("uptime")).split(" ")[0]) }),
  };
  const processes: Collector = {
    name: "processes",
    collect: async () => ({ processCount: (await readdir(proc)).filter((entry) => /^\d+$/.test(entry)).length }),
  };

  const filesystems: Collector = {
    name: "filesystems",
    async collect() {
      const mounts = parseMounts(await read("mounts"));
      const results = await Promise.all(
        mounts.map(async ({ mount, fsType }) => {
          try {
            const stats = await statfs(mount);
            const totalBytes = stats.blocks * stats.bsize;
            if (totalBytes === 0) return null;
            return {
              mount,
              fsType,
              totalBytes,
              usedBytes: (stats.blocks - stats.bfree) * stats.bsize,
              availableBytes: stats.bavail * stats.bsize,
            };
          } catch {
            return null;
          }
        }),
      );
      return { filesystems: results.filter((entry) => entry !== null) };
    },
  };

  const network = countersWithRates({
    name: "network",
    clock,
    read: async () => parseNetDev(await read("net/dev")),
    toRates: (name, before: InterfaceCounters, now: InterfaceCounters, seconds) => ({
      interface: name,
      rxBytesPerSecond: perSecond(before.rxBytes, now.rxBytes, seconds),
      txBytesPerSecond: perSecond(before.txBytes, now.txBytes, seconds),
      rxErrorsPerSecond: perSecond(before.rxErrors, now.rxErrors, seconds),
      txErrorsPerSecond: perSecond(before.txErrors, now.txErrors, seconds),
      rxDropsPerSecond: perSecond(before.rxDrops, now.rxDrops, seconds),
      txDropsPerSecond: perSecond(before.txDrops, now.txDrops, seconds),
    }),
    toPart: (network) => ({ network }),
  });

  const disks = countersWithRates({
    name: "disks",
    clock,
    read: async () => parseDiskstats(await read("diskstats")),
    toRates: (device, before: DiskCounters, now: DiskCounters, seconds) => ({
      device,
      readBytesPerSecond: perSecond(before.readSectors * SECTOR_BYTES, now.readSectors * SECTOR_BYTES, seconds),
      writeBytesPerSecond: perSecond(before.writeSectors * SECTOR_BYTES, now.writeSectors * SECTOR_BYTES, seconds),
      readsPerSecond: perSecond(before.reads, now.reads, seconds),
      writesPerSecond: perSecond(before.writes, now.writes, seconds),
    }),
    toPart: (disks) => ({ disks }),
  });

  return [cpu, load, memory, uptime, processes, filesystems, network, disks];
}

/**
 * A collector of per-device counters reported as per-second rates: it keeps the previous reading,
 * and reports a device only once it has two readings of it (the first call is a baseline).
 */
function countersWithRates<Counters, Rate>(options: {
  name: string;
  clock: Clock;
  read: () => Promise<Map<string, Counters>>;
  toRates: (device: string, before: Counters, now: Counters, seconds: number) => Rate;
  toPart: (rates: Rate[]) => SamplePart;
}): Collector {
  let previous: { atMs: number; counters: Map<string, Counters> } | null = null;
  return {
    name: options.name,
    async collect() {
      const current = { atMs: options.clock.monotonicMs(), counters: await options.read() };
      const before = previous;
      previous = current;
      if (!before) return options.toPart([]);
      const seconds = (current.atMs - before.atMs) / 1000;
      return options.toPart(
        [...current.counters].flatMap(([device, now]) => {
          const old = before.counters.get(device);
          return old ? [options.toRates(device, old, now, seconds)] : [];
        }),
      );
    },
  };
}
