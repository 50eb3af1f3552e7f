import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import { buildConnectionOptions, jitteredBackoff } from "../../../src/transport/connection-options.ts";

describe("jitteredBackoff", () => {
  it("grows exponentially, stays within [ceiling/2, ceiling], is capped, and starts over after reset", () => {
    const lows = jitteredBackoff({ baseMs: 100, maxMs: 1_000, random: () => 0 });
    const highs = jitteredBackoff({ baseMs: 100, maxMs: 1_000, random: () => 1 });
    expect([1, 2, 3, 4, 5].map(() => lows.next())).toEqual([50, 100, 200, 400, 500]);
    expect([1, 2, 3, 4, 5].map(() => highs.next())).toEqual([100, 200, 400, 800, 1_000]);
    highs.reset();
    expect(highs.next()).toBe(100);
  });

  it("spreads a fleet: delays for the same attempt differ across agents", () => {
    let seed = 1;
    const random = (): number => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const delays = new Set(
      Array.from({ length: 50 }, () => jitteredBackoff({ baseMs: 1_000, maxMs: 30_000, random }).next()),
    );
    expect(delays.size).toBeGreaterThan(40);
  });
});

describe("buildConnectionOptions", () => {
  it("names the connection after the machine, reconnects forever (refused credentials too) and leaves the first connect to the link", () => {
    const backoff = jitteredBackoff({ baseMs: 100, maxMs: 1_000, random: () => 1 });
    const options = buildConnectionOptions(
      { natsServers: ["nats://127.0.0.1:4222"], auth: { user: "u", password: "p" }, tls: {} },
      "m-1",
      backoff,
    );
    expect(options).toMatchObject({
      name: "m-1",
      user: "u",
      pass: "p",
      maxReconnectAttempts: -1,
      waitOnFirstConnect: false,
      ignoreAuthErrorAbort: true,
    });
    // nats.js asks for the delay on every turn of its loop: only a dial moves it on.
    expect([options.reconnectDelayHandler?.(), options.reconnectDelayHandler?.()]).toEqual([100, 100]);
    expect(options.reconnectToServer?.([], null)).toBeNull();
    expect(options.reconnectDelayHandler?.()).toBe(200);
    expect(options.tls).toBeUndefined();
  });

  const fixed = { delay: () => 1, dialing: () => undefined };

  it("turns on TLS for tls:// servers or a CA, and fails clearly on a missing credentials file", () => {
    expect(buildConnectionOptions({ natsServers: ["tls://h:4443"], auth: {}, tls: {} }, "m", fixed).tls).toEqual({});
    expect(
      buildConnectionOptions({ natsServers: ["nats://h"], auth: {}, tls: { caFile: "/ca.pem" } }, "m", fixed).tls,
    ).toEqual({ caFile: "/ca.pem" });
    expect(() =>
      buildConnectionOptions(
        { natsServers: ["nats://h"], auth: { credsFile: "/nonexistent/x.creds" }, tls: {} },
        "m",
        fixed,
      ),
    ).toThrow(/cannot read the NATS credentials file \/nonexistent\/x.creds/);
  });

  it("reads the NKey seed file again at every handshake, so a rotated credential is used on the next reconnect", () => {
    const dir = mkdtempSync(join(tmpdir(), "edge-agent-seed-"));
    try {
      const seedFile = join(dir, "agent.nk");
      const [first, second] = [createUser(), createUser()];
      writeFileSync(seedFile, new TextDecoder().decode(first.getSeed()));
      const options = buildConnectionOptions(
        { natsServers: ["nats://h"], auth: { nkeySeedFile: seedFile }, tls: {} },
        "m",
        fixed,
      );
      const authenticate = Array.isArray(options.authenticator) ? options.authenticator[0] : options.authenticator;
      expect(authenticate?.("nonce")).toMatchObject({ nkey: first.getPublicKey() });
      writeFileSync(seedFile, new TextDecoder().decode(second.getSeed()));
      expect(authenticate?.("nonce")).toMatchObject({ nkey: second.getPublicKey() });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
