import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PlatformState } from "../../../scripts/platform/platform-state.ts";
import { assertPortsFree, CONVENTIONAL_PORTS, choosePorts, type PortProbe } from "../../../scripts/platform/ports.ts";
import { scratchDir } from "../../helpers/scratch-dir.ts";

/** Ports in `busy` are taken; free ports are handed out from 40000 up. */
function probe(busy: readonly number[]): PortProbe {
  let next = 40_000;
  return { free: async (port) => !busy.includes(port), any: async () => next++ };
}

describe("the platform's ports", () => {
  it("are the usual ones where free, so an agent with no settings finds NATS on 4222", async () => {
    expect(await choosePorts(false, probe([]))).toEqual(CONVENTIONAL_PORTS);
  });

  it("replace a taken one with a free one, and never hand out one port twice", async () => {
    const ports = await choosePorts(false, probe([9092, 9000]));
    expect(ports.kafka).toBe(40_000);
    expect(ports.pinotController).toBe(40_001);
    expect(ports.nats).toBe(4222);
    expect(new Set(Object.values(ports)).size).toBe(Object.keys(ports).length);
  });

  it("with --any-ports are never the usual ones", async () => {
    const ports = await choosePorts(true, probe([]));
    for (const port of Object.values(ports)) expect(Object.values(CONVENTIONAL_PORTS)).not.toContain(port);
  });

  it("of a reused platform must all be free again, or the line names each taken one and --fresh", async () => {
    await expect(assertPortsFree(CONVENTIONAL_PORTS, probe([9092, 8099]))).rejects.toThrow(
      "the platform's ports are in use: 9092 (Kafka), 8099 (Pinot's broker); stop what listens there, or start over on other ports with npm run platform -- --fresh",
    );
    await expect(assertPortsFree(CONVENTIONAL_PORTS, probe([]))).resolves.toBeUndefined();
  });
});

describe("the platform's state dir", () => {
  it("keeps the ports of the first run for the next", () => {
    const state = new PlatformState(scratchDir("edge-platform-state-"));
    expect(state.readPorts()).toBeNull();
    state.writePorts(CONVENTIONAL_PORTS);
    expect(new PlatformState(state.dir).readPorts()).toEqual(CONVENTIONAL_PORTS);
  });

  it("is emptied by --fresh only when it holds a platform's state: another directory's files are never removed", () => {
    const dir = scratchDir("edge-platform-state-");
    writeFileSync(join(dir, "precious.txt"), "x");
    expect(() => new PlatformState(dir).wipe()).toThrow(/holds no platform state \(no state\.json\): not removing it/);
    expect(existsSync(join(dir, "precious.txt"))).toBe(true);

    const state = new PlatformState(scratchDir("edge-platform-state-"));
    state.writePorts(CONVENTIONAL_PORTS);
    mkdirSync(state.path("kafka", "logs"), { recursive: true });
    const lock = state.lock();
    try {
      state.wipe();
      expect(existsSync(state.path("kafka"))).toBe(false);
      expect(state.exists()).toBe(false);
    } finally {
      lock.release();
    }
  });

  it("is used by one platform at a time", () => {
    const state = new PlatformState(scratchDir("edge-platform-state-"));
    const lock = state.lock();
    try {
      expect(() => new PlatformState(state.dir).lock()).toThrow(
        new RegExp(`another npm run platform \\(pid ${process.pid}\\) uses ${state.dir}`),
      );
    } finally {
      lock.release();
    }
  });
});
