/**
 * `npm run platform`: the whole data path on this machine, on loopback. nats-server (JetStream), one
 * Kafka broker and one Pinot cluster (the servers the tests run), `edge-agent dev-setup`,
 * `edge-bridge pinot-setup`, the bridge, and local agents; then it waits until the first device row
 * is queryable in Pinot, says what runs where, and runs until a signal, which stops everything in
 * order (agents first, so what they send is bridged; the servers last).
 */
import { DEFAULT_TOPICS } from "../../src/contracts/index.ts";
import { ensureKafkaRuntime, KAFKA_VERSION } from "../kafka-runtime.ts";
import { ensureNatsServer, NATS_SERVER_RELEASES } from "../nats-server-runtime.ts";
import { ensurePinotRuntime, PINOT_VERSION } from "../pinot-runtime.ts";
import { stopLeftovers } from "./leftovers.ts";
import { firstDeviceRow } from "./pinot-rows.ts";
import { type PlatformPorts, PlatformState } from "./platform-state.ts";
import { assertPortsFree, choosePorts } from "./ports.ts";
import { Progress } from "./progress.ts";
import type { ServiceProcess } from "./service-process.ts";
import {
  AGENT_CLI,
  BRIDGE_CLI,
  bridgeEnvironment,
  describeExit,
  pinotEndpointsOf,
  runToCompletion,
  startAgent,
  startBridge,
  startKafka,
  startNatsServer,
  startPinot,
  waitForTopics,
} from "./services.ts";
import { formatSummary } from "./summary.ts";

export interface PlatformOptions {
  readonly stateDir: string;
  readonly cwd: string;
  readonly agents: number;
  readonly fresh: boolean;
  /** Free ports only, never the conventional ones (tests, and a second platform beside a first). */
  readonly anyPorts: boolean;
  readonly out: NodeJS.WriteStream;
}

/** The agents' machine ids: the same on every run, so a reused platform keeps its devices. */
export function localMachineIds(count: number): string[] {
  return Array.from({ length: count }, (_, index) => `local-${index + 1}`);
}

const seconds = (sinceMs: number): string => `${((performance.now() - sinceMs) / 1000).toFixed(1)} s`;

class StopRequested extends Error {
  readonly code = "EDGE_PLATFORM_STOP_REQUESTED";
}

export class LocalPlatform {
  private readonly state: PlatformState;
  private readonly progress: Progress;
  /** In start order; stopped in the reverse. */
  private readonly services: ServiceProcess[] = [];
  private stopRequested: NodeJS.Signals | null = null;
  private wakeOnStop: (() => void) | null = null;
  private readonly stopped: Promise<void>;
  private readonly options: PlatformOptions;

  constructor(options: PlatformOptions) {
    this.options = options;
    this.state = new PlatformState(options.stateDir);
    this.progress = new Progress(options.out);
    this.stopped = new Promise((resolve) => {
      this.wakeOnStop = resolve;
    });
  }

  /** A signal: stops starting, or stops what runs. */
  requestStop(signal: NodeJS.Signals): void {
    if (this.stopRequested) return;
    this.stopRequested = signal;
    this.progress.line(`${signal}: stopping the platform`);
    this.wakeOnStop?.();
  }

  /** Runs until a signal (exit 0) or a failure (exit 1); everything it started is stopped either way. */
  async run(): Promise<number> {
    let lock: { release(): void };
    try {
      lock = this.state.lock();
    } catch (error) {
      // Another platform runs on this state dir: one line, nothing touched.
      this.progress.line(`edge platform: ${error instanceof Error ? error.message : String(error)}`);
      this.progress.stop();
      return 1;
    }
    try {
      await this.start();
      const failure = await this.watch();
      return (await this.stopAll()) && failure === null ? 0 : 1;
    } catch (error) {
      if (!(error instanceof StopRequested)) {
        this.progress.line(`edge platform: ${error instanceof Error ? error.message : String(error)}`);
        await this.stopAll();
        return 1;
      }
      return (await this.stopAll()) ? 0 : 1;
    } finally {
      this.progress.stop();
      lock.release();
    }
  }

  private say(line: string): void {
    this.progress.line(line);
  }

  /** Waits for `step` unless a stop is requested first. */
  private async step<T>(step: Promise<T>): Promise<T> {
    if (this.stopRequested) throw new StopRequested();
    step.catch(() => undefined);
    const result = await Promise.race([step, this.stopped.then(() => null)]);
    if (this.stopRequested) throw new StopRequested();
    return result as T;
  }

  private adopt(service: ServiceProcess): ServiceProcess {
    this.services.push(service);
    this.state.writeProcesses(
      this.services.flatMap((each) => (each.pid === undefined ? [] : [{ name: each.name, pid: each.pid }])),
    );
    return service;
  }

  private async start(): Promise<void> {
    const { state } = this;
    if (this.options.fresh && state.exists()) {
      this.say(`--fresh: removing the platform's state in ${state.dir}`);
      state.wipe();
    }
    await stopLeftovers(state, (line) => this.say(line));
    const reused = state.readPorts();
    const ports: PlatformPorts = reused ?? (await choosePorts(this.options.anyPorts));
    await assertPortsFree(ports);
    state.writePorts(ports);
    this.say(
      reused
        ? `Reusing the platform's state in ${state.dir} (npm run platform -- --fresh starts over)`
        : `Starting a new platform; its state goes to ${state.dir}`,
    );

    const natsVersion = NATS_SERVER_RELEASES.current.version;
    const [natsBinary, kafkaRuntime, pinotRuntime] = await this.step(
      this.progress.track(
        "nats-server, Kafka and Pinot to be fetched (once, into node_modules/.cache)",
        Promise.all([ensureNatsServer(natsVersion), ensureKafkaRuntime(), ensurePinotRuntime()]),
      ),
    );

    let since = performance.now();
    this.adopt(await this.step(startNatsServer(state, ports, natsBinary)));
    this.say(`nats-server ${natsVersion} on nats://127.0.0.1:${ports.nats} (${seconds(since)})`);

    const kafkaStarted = performance.now();
    const kafka = await this.step(startKafka(state, ports, kafkaRuntime));
    this.adopt(kafka.service);
    const pinotStarted = performance.now();
    const pinot = startPinot(state, ports, pinotRuntime);
    this.adopt(pinot.service);
    const kafkaReady = this.progress.track("Kafka", kafka.ready);
    const pinotReady = this.progress.track("Pinot", pinot.ready);
    kafkaReady.then(
      () => this.say(`Kafka ${KAFKA_VERSION} on 127.0.0.1:${ports.kafka} (${seconds(kafkaStarted)})`),
      () => undefined,
    );
    pinotReady.then(
      () =>
        this.say(
          `Pinot ${PINOT_VERSION}: controller ${pinotEndpointsOf(ports).controllerUrl} (${seconds(pinotStarted)})`,
        ),
      () => undefined,
    );
    pinotReady.catch(() => undefined);

    since = performance.now();
    const natsUrl = `nats://127.0.0.1:${ports.nats}`;
    const cliDirs = { EDGE_AGENT_CONFIG_DIR: state.path("cli"), EDGE_AGENT_DATA_DIR: state.path("cli") };
    await this.step(
      runToCompletion(
        state,
        "dev-setup",
        [AGENT_CLI, "dev-setup"],
        { EDGE_AGENT_NATS_URL: natsUrl, ...cliDirs },
        120_000,
      ),
    );
    this.say(`edge-agent dev-setup: the platform's streams and the agent-config bucket are ready (${seconds(since)})`);

    const machineIds = localMachineIds(this.options.agents);
    for (const machineId of machineIds) this.adopt(startAgent(state, ports, machineId));
    this.say(
      `${machineIds.length === 1 ? "agent" : "agents"} ${machineIds.join(", ")} started (logs in ${state.logsDir})`,
    );

    await this.step(kafkaReady);
    since = performance.now();
    const bridge = this.adopt(startBridge(state, ports));
    await this.step(
      this.progress.track(
        "the bridge's topics",
        waitForTopics(bridge, ports, [DEFAULT_TOPICS.devices, DEFAULT_TOPICS.telemetry, DEFAULT_TOPICS.events]),
      ),
    );
    this.say(`edge-bridge runs and made its Kafka topics (${seconds(since)})`);

    await this.step(pinotReady);
    since = performance.now();
    const setup = await this.step(
      this.progress.track(
        "pinot-setup",
        runToCompletion(
          state,
          "pinot-setup",
          [BRIDGE_CLI, "pinot-setup", "--controller", pinotEndpointsOf(ports).controllerUrl],
          bridgeEnvironment(state, ports),
          240_000,
        ),
      ),
    );
    const actions = setup
      .trim()
      .split("\n")
      .filter((line) => line !== "");
    const changed = actions.filter((line) => !line.startsWith("unchanged"));
    this.say(
      `edge-bridge pinot-setup: ${changed.length === 0 ? "tables unchanged" : changed.join(", ")} (${seconds(since)})`,
    );

    const [firstMachine = "local-1"] = machineIds;
    const row = await this.step(
      this.progress.track(
        `${firstMachine}'s row in Pinot's devices table`,
        firstDeviceRow(pinotEndpointsOf(ports).brokerUrl, firstMachine, this.services, 240_000),
      ),
    );
    this.say(`devices: ${row}`);
    this.say(
      formatSummary({
        stateDir: state.dir,
        cwd: this.options.cwd,
        ports,
        pinot: pinotEndpointsOf(ports),
        natsServerVersion: natsVersion,
        kafkaVersion: KAFKA_VERSION,
        pinotVersion: PINOT_VERSION,
        machineIds,
        // performance.now() counts from this process's start: the command's own time is included.
        firstRowSeconds: performance.now() / 1000,
      }),
    );
  }

  /** Until a signal (null) or until a program ends on its own (that program). */
  private async watch(): Promise<ServiceProcess | null> {
    const failed = await Promise.race([
      this.stopped.then(() => null),
      ...this.services.map((service) => service.exited.then(() => service)),
    ]);
    if (failed && !this.stopRequested) {
      this.say(
        `${failed.name} ended on its own (${describeExit(failed.exitStatus ?? { code: null, signal: null })}): stopping the platform. Its log, ${failed.logFile}, ends:\n${failed.logTail()}`,
      );
      return failed;
    }
    return null;
  }

  /** Stops everything started, newest first; true when each stopped cleanly. */
  private async stopAll(): Promise<boolean> {
    let clean = true;
    // Agents first: what they send on the way out is still bridged. Then the rest, newest first.
    const agentsFirst = [...this.services].reverse().sort((a, b) => Number(b.isAgent) - Number(a.isAgent));
    for (const service of agentsFirst) {
      const since = performance.now();
      const exit = await service.stop();
      if (exit.killed) clean = false;
      const how = exit.killed
        ? `killed: no exit ${seconds(since)} after SIGTERM`
        : `${describeExit(exit)}, ${seconds(since)}`;
      this.say(`stopped ${service.name} (${how})`);
    }
    this.services.length = 0;
    this.state.writeProcesses([]);
    this.say(`The platform stopped. Its state stays in ${this.state.dir} for the next run.`);
    return clean;
  }
}
