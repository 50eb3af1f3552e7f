import { cpus, freemem, loadavg, totalmem, uptime } from "node:os";
import type { Clock } from "../runtime/index.ts";
import type { Collector } from "./collector.ts";
import { type CpuTimes, cpuPercent } from "./proc-parsers.ts";

/**
 * Collectors for Windows and macOS. CPU, load, memory and uptime come from Node's `os` module
 * (no process spawned); filesystems, network and disk I/O from systeminformation, loaded only on
 * these platforms.
 */
export function portableCollectors(options: { clock: Clock }): Collector[] {
  const coreTimes = (): CpuTimes[] =>
    cpus().map(({ times }) => {
      const total = times.user + times.nice + times.sys + times.idle + times.irq;
      return { busy: total - times.idle, total };
    });
  let previousCores: CpuTimes[] | null = null;
  const sum = (cores: CpuTimes[]): CpuTimes =>
    cores.reduce((all, core) => ({ busy: all.busy + core.busy, total: all.total + core.total }), { busy: 0, total: 0 });

  const cpu: Collector = {
    name: "cpu",
    async collect() {
      const current = coreTimes();
      const previous = previousCores;
      previousCores = current;
      if (!previous) return { cpu: null };
      return {
        cpu: {
          totalPercent: cpuPercent(sum(previous), sum(current)),
          perCorePercent: current.map((core, index) => cpuPercent(previous[index] ?? core, core)),
        },
      };
    },
  };
  const basics: Collector = {
    name: "system",
    async collect() {
      const [one = 0, five = 0, fifteen = 0] = loadavg();
      const totalBytes = totalmem();
      const availableBytes = freemem();
      return {
        load: { one, five, fifteen },
        memory: {
          totalBytes,
          availableBytes,
          usedBytes: totalBytes - availableBytes,
          swapTotalBytes: 0,
          swapUsedBytes: 0,
        },
        uptimeSeconds: uptime(),
      };
    },
  };
  const filesystems: Collector = {
    name: "filesystems",
    async collect() {
      const si = await import("systeminformation");
      const entries = await si.fsSize();
      return {
        filesystems: entries.map((entry) => ({
          mount: entry.mount,
          fsType: entry.type,
          totalBytes: entry.size,
          usedBytes: entry.used,
          availableBytes: entry.available,
        })),
      };
    },
  };
  let lastNetworkAtMs: number | null = null;
  const network: Collector = {
    name: "network",
    async collect() {
      const si = await import("systeminformation");
      const stats = await si.networkStats("*");
      const first = lastNetworkAtMs === null;
      lastNetworkAtMs = options.clock.monotonicMs();
      // systeminformation computes rates against its own previous call; the first has none.
      if (first) return { network: [] };
      return {
        network: stats
          .filter((entry) => entry.iface !== "lo" && entry.rx_sec !== null)
          .map((entry) => ({
            interface: entry.iface,
            rxBytesPerSecond: Math.max(0, entry.rx_sec ?? 0),
            txBytesPerSecond: Math.max(0, entry.tx_sec ?? 0),
            rxErrorsPerSecond: 0,
            txErrorsPerSecond: 0,
            rxDropsPerSecond: 0,
            txDropsPerSecond: 0,
          })),
      };
    },
  };
  return [cpu, basics, filesystems, network];
}
