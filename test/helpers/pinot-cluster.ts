import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  PINOT_START_TIMEOUT_MS,
  type PinotPorts,
  pinotClusterArgs,
  pinotEndpoints,
  pinotReady,
} from "../../scripts/local-services/pinot-cluster-process.ts";
import { ensurePinotRuntime } from "../../scripts/pinot-runtime.ts";

import { freeLoopbackPort } from "./nats-server.ts";
import { waitFor } from "./wait-for.ts";

/**
 * Starts a real Apache Pinot cluster (scripts/pinot-runtime.ts) as one JVM on loopback:
 * ZooKeeper, controller, broker and server (scripts/pinot-runtime/PinotCluster.java), each on a free
 * port and listening on 127.0.0.1 only, their data in a temp dir. Ready once the controller, the broker
 * and the server each answer `/health` with OK and the controller lists the broker and the server. The JVM is killed and the
 * temp dir removed on `dispose()` and when the test process exits.
 *
 * Measured here (2 cores, Java 17, Pinot 0.11.0): spawn to ready ~16 s, of which ~2 s compile the
 * single-file launcher; RSS ~350 MB with -Xmx1g once ready.
 */
export interface PinotClusterHandle {
  /** `http://127.0.0.1:<port>`: the controller's REST API (schemas, tables, instances). */
  readonly controllerUrl: string;
  /** `http://127.0.0.1:<port>`: the broker (`POST /query/sql`). */
  readonly brokerUrl: string;
  /** Milliseconds from spawn to ready. */
  readonly startMs: number;
  /** The JVM's pid (to read its RSS). */
  readonly pid: number;
  /**
   * The server's query port (Netty), the one listener Pinot 0.11 gives no host setting: it binds
   * every interface. Nothing in the tests connects to it from outside the JVM.
   */
  readonly serverQueryPort: number;
  /** Kills the JVM and removes the temp dir. */
  dispose(): Promise<void>;
  /** The last ~16 KB of the JVM's stdout and stderr (log4j at WARN). */
  output(): string;
}

const OUTPUT_LIMIT = 16 * 1024;

async function javaTmpdir(dir: string): Promise<string> {
  const javaTmp = join(dir, "java-tmp");
  await mkdir(javaTmp, { recursive: true });
  return javaTmp;
}

export async function startPinotCluster(): Promise<PinotClusterHandle> {
  const runtimeDir = await ensurePinotRuntime();
  const dir = await mkdtemp(join(tmpdir(), "edge-pinot-"));
  let child: ChildProcess | undefined;
  let output = "";
  const append = (chunk: Buffer | string): void => {
    output = (output + chunk.toString()).slice(-OUTPUT_LIMIT);
  };
  const cleanUpOnProcessExit = (): void => {
    child?.kill("SIGKILL");
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort: the process is exiting
    }
  };
  process.once("exit", cleanUpOnProcessExit);

  const kill = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGKILL");
    await exited;
    child = undefined;
  };

  try {
    const ports: PinotPorts = {
      zooKeeper: await freeLoopbackPort(),
      controller: await freeLoopbackPort(),
      broker: await freeLoopbackPort(),
      serverQuery: await freeLoopbackPort(),
      serverAdmin: await freeLoopbackPort(),
    };
    const started = Date.now();
    const proc = spawn("java", pinotClusterArgs(runtimeDir, join(dir, "data"), ports, await javaTmpdir(dir)), {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    proc.stdout?.on("data", append);
    proc.stderr?.on("data", append);
    let failure: string | undefined;
    proc.once("exit", (code, signal) => {
      failure ??= `exited during startup (${signal ?? `code ${code}`})`;
      if (child === proc) child = undefined;
    });
    proc.once("error", (error) => (failure ??= `could not be started: ${error.message}`));

    const endpoints = pinotEndpoints(ports);
    const outcome = await waitFor(
      `the pinot cluster to be ready (zk ${ports.zooKeeper}, server netty ${ports.serverQuery})`,
      async () => failure ?? ((await pinotReady(endpoints)) && "ready"),
      PINOT_START_TIMEOUT_MS - (Date.now() - started),
      250,
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}\n${output}`, { cause: error });
    });
    if (outcome !== "ready") throw new Error(`pinot cluster ${outcome}\n${output}`);
    return {
      controllerUrl: endpoints.controllerUrl,
      brokerUrl: endpoints.brokerUrl,
      startMs: Date.now() - started,
      pid: proc.pid ?? -1,
      serverQueryPort: ports.serverQuery,
      async dispose() {
        await kill();
        await rm(dir, { recursive: true, force: true });
        process.off("exit", cleanUpOnProcessExit);
      },
      output: () => output,
    };
  } catch (error) {
    await kill();
    await rm(dir, { recursive: true, force: true });
    process.off("exit", cleanUpOnProcessExit);
    throw error;
  }
}
