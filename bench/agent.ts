import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { access, chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startNatsServer } from "../test/helpers/nats-server.ts";
import { CLOCK_TICKS_PER_SECOND, type MemoryKiB, readCpuTicks, readMemoryKiB } from "./proc-stats.ts";

/**
 * Daemon footprint: time from spawn to "connected to NATS", and resident memory after an idle
 * period, against a bare Node process idling for the same time in the same run.
 * BENCH_IDLE_SECONDS (default 60) sets the idle period; BENCH_STARTS (default 5) the start samples.
 * BENCH_WARMUP_SECONDS (default 15) passes after "connected" before idle CPU is counted.
 * BENCH_AGENT_BINARY measures a built single executable (npm run package) instead of the sources.
 * Peers: where their Debian packages are installed (prometheus-node-exporter, zabbix-agent2,
 * collectd-core), each runs beside the agent for the same idle period, on loopback with a config of
 * its own in a temp dir, and gets a row measured the same way (none is started as a service).
 */
export const name = "agent";

const CLI = resolve(import.meta.dirname, "../src/cli/main.ts");
const BINARY = process.env.BENCH_AGENT_BINARY;
/** The executable as an installer leaves it (see run()), or the sources. */
let installedBinary: string | null = null;
const agentCommand = (): [string, string[]] =>
  installedBinary ? [installedBinary, ["run"]] : [process.execPath, [CLI, "run"]];

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let buffer = "";
    const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms`)), timeoutMs);
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      if (pattern.test(buffer)) {
        clearTimeout(timer);
        resolvePromise();
      }
    });
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once("error", () => resolveFree(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolveFree(true)));
  });
}

/** A free loopback port below 32768: zabbix_agent2 refuses a ListenPort above 32767. */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await portIsFree(port)) return port;
  }
  throw new Error("no free loopback port between 20000 and 32000 after 50 tries");
}

interface Peer {
  readonly name: string;
  readonly executable: string;
  /** The command line, given a private directory for its files and a free loopback port. */
  args(dir: string, port: number): Promise<string[]>;
  /** What a collector of its kind is asked at each interval (node exporter only works when scraped). */
  poll?(port: number): Promise<void>;
}

/** Other agents, each doing its ordinary job on this machine at a one-minute cadence or less. */
const PEERS: readonly Peer[] = [
  {
    name: "prometheus-node-exporter",
    executable: "/usr/bin/prometheus-node-exporter",
    args: async (_dir, port) => [`--web.listen-address=127.0.0.1:${port}`],
    poll: async (port) => void (await fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text())),
  },
  {
    name: "zabbix_agent2",
    executable: "/usr/sbin/zabbix_agent2",
    args: async (dir, port) => {
      const lines = [
        `ListenIP=127.0.0.1`,
        `ListenPort=${port}`,
        "Server=127.0.0.1",
        "Hostname=bench",
        "LogType=console",
        `PidFile=${dir}/agent.pid`,
        `ControlSocket=${dir}/control.sock`,
        `PluginSocket=${dir}/plugin.sock`,
      ];
      await writeFile(join(dir, "zabbix_agent2.conf"), `${lines.join("\n")}\n`);
      return ["-c", join(dir, "zabbix_agent2.conf")];
    },
  },
  {
    name: "collectd",
    executable: "/usr/sbin/collectd",
    args: async (dir) => {
      const plugins = ["cpu", "memory", "load", "df", "interface", "disk", "csv"].map(
        (plugin) => `LoadPlugin ${plugin}`,
      );
      const lines = [
        `BaseDir "${dir}"`,
        `PIDFile "${dir}/collectd.pid"`,
        "Interval 10",
        ...plugins,
        "<Plugin csv>",
        `  DataDir "${dir}/csv"`,
        "</Plugin>",
      ];
      await writeFile(join(dir, "collectd.conf"), `${lines.join("\n")}\n`);
      return ["-f", "-C", join(dir, "collectd.conf")];
    },
  },
];

interface RunningPeer {
  readonly peer: Peer;
  readonly child: ChildProcess;
  readonly port: number;
  /** The end of what it wrote to stderr: why it exited, if it did. */
  errors(): string;
}

async function startPeers(root: string): Promise<RunningPeer[]> {
  const running: RunningPeer[] = [];
  for (const peer of PEERS) {
    const installed = await access(peer.executable).then(
      () => true,
      () => false,
    );
    if (!installed) continue;
    const dir = join(root, `peer-${peer.name}`);
    await mkdir(dir, { recursive: true });
    const port = await freePort();
    const child = spawn(peer.executable, await peer.args(dir, port), { stdio: ["ignore", "ignore", "pipe"] });
    let errors = "";
    child.stderr?.on("data", (chunk: Buffer) => (errors = (errors + chunk.toString()).slice(-2_000)));
    running.push({ peer, child, port, errors: () => errors });
  }
  return running;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

export async function run(): Promise<Record<string, unknown>> {
  const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
  const starts = Number(process.env.BENCH_STARTS ?? 5);
  const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 15);
  const server = await startNatsServer();
  const root = await mkdtemp(join(tmpdir(), "edge-agent-bench-"));
  try {
    if (BINARY) {
      // Measured as a package installs it: a fresh copy. The file `node --build-sea` has just
      // written sits in the page cache as 2 MiB folios, which the kernel then maps whole: about
      // 70 MB more file-backed RSS than the same bytes copied, an artefact no installed agent has.
      installedBinary = join(root, "edge-agent");
      await copyFile(resolve(BINARY), installedBinary);
      await chmod(installedBinary, 0o755);
    }
    // MALLOC_ARENA_MAX as the service definitions set it.
    const env = {
      ...process.env,
      MALLOC_ARENA_MAX: "2",
      EDGE_AGENT_NATS_URL: server.url,
      EDGE_AGENT_MACHINE_ID: "bench-1",
      EDGE_AGENT_DATA_DIR: join(root, "data"),
      EDGE_AGENT_CONFIG_DIR: join(root, "config"),
    };
    // The platform's streams and KV bucket, as a real server has them: without them the agent
    // would spend its "idle" time retrying undeliverable events.
    const [command, runArgs] = agentCommand();
    execFileSync(command, [...runArgs.slice(0, -1), "dev-setup"], { env, stdio: "ignore" });
    const startToConnectedMs: number[] = [];
    for (let attempt = 0; attempt < starts; attempt++) {
      const began = performance.now();
      const child = spawn(...agentCommand(), { env, stdio: ["ignore", "pipe", "inherit"] });
      await waitForLine(child, /"msg":"connected to NATS"/, 30_000);
      startToConnectedMs.push(Math.round(performance.now() - began));
      await stopChild(child);
    }
    const bareStarted = performance.now();
    const bare = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    await new Promise((r) => setTimeout(r, 200));
    const bareStartMs = performance.now() - bareStarted;
    const peers = await startPeers(root);
    const pollPeers = (): void => {
      for (const { peer, port } of peers) void peer.poll?.(port).catch(() => undefined);
    };
    pollPeers();
    const peerPolling = setInterval(pollPeers, 60_000);
    const agent = spawn(...agentCommand(), { env, stdio: ["ignore", "pipe", "inherit"] });
    await waitForLine(agent, /"msg":"connected to NATS"/, 30_000);
    // Start-up work (first inventory, first sample, consumers) is over by then: idle is what follows.
    await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
    const ticksBefore = { agent: readCpuTicks(agent.pid as number), bare: readCpuTicks(bare.pid as number) };
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const ticksAfter = { agent: readCpuTicks(agent.pid as number), bare: readCpuTicks(bare.pid as number) };
    const agentMemory = readMemoryKiB(agent.pid as number);
    const bareMemory = readMemoryKiB(bare.pid as number);
    clearInterval(peerPolling);
    const peerRows: Record<string, MemoryKiB | string> = {};
    for (const { peer, child, errors } of peers) {
      peerRows[peer.name] =
        child.exitCode === null && child.signalCode === null
          ? readMemoryKiB(child.pid as number)
          : `exited early (${child.exitCode ?? child.signalCode}): ${errors().trim().split("\n").slice(-2).join(" / ")}`;
      await stopChild(child);
    }
    await stopChild(agent);
    await stopChild(bare);
    const cpuPercent = (ticks: number): number =>
      Number(((ticks / CLOCK_TICKS_PER_SECOND / idleSeconds) * 100).toFixed(3));
    startToConnectedMs.sort((a, b) => a - b);
    return {
      agent: BINARY ? `single executable ${BINARY}` : "sources run by node (type stripping)",
      idleSeconds,
      warmupSeconds,
      startToConnectedMs: {
        median: startToConnectedMs[Math.floor(starts / 2)],
        min: startToConnectedMs[0],
        max: startToConnectedMs[starts - 1],
      },
      bareNodeSpawnMs: Math.round(bareStartMs),
      idleRssKiB: {
        agent: agentMemory.rss,
        bareNode: bareMemory.rss,
        ratio: Number((agentMemory.rss / bareMemory.rss).toFixed(2)),
      },
      idleAnonKiB: {
        agent: agentMemory.anon,
        bareNode: bareMemory.anon,
        ratio: Number((agentMemory.anon / bareMemory.anon).toFixed(2)),
      },
      idleFileKiB: {
        agent: agentMemory.file,
        bareNode: bareMemory.file,
        ratio: Number((agentMemory.file / bareMemory.file).toFixed(2)),
      },
      idleCpuPercent: {
        agent: cpuPercent(ticksAfter.agent - ticksBefore.agent),
        bareNode: cpuPercent(ticksAfter.bare - ticksBefore.bare),
      },
      // Resident KiB of the peers installed here, idle as long beside the agent (none installed: {}).
      peersIdleKiB: peerRows,
      goalKiB: { rss: 70 * 1024, anon: 20 * 1024 },
    };
  } finally {
    await server.dispose();
    await rm(root, { recursive: true, force: true });
  }
}
