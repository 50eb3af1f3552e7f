import { statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/runtime/logger.ts";
import {
  type Arrival,
  type CommandTrust,
  createCommandTrust,
  HIGH_WATER_FILE,
  judgeCommand,
  signCommand,
  signDocument,
  UntrustedCommandError,
  UntrustedReason,
} from "../../../src/trust/index.ts";
import { manualClock } from "../../helpers/manual-clock.ts";
import { createSigner } from "../../helpers/signing.ts";

const fixedClock = manualClock(Date.parse("2026-11-30T12:00:00Z"));
const at = (scope: string, ref = `STREAM:${scope.length}`): Arrival => ({ scope, ref });
const NOW = fixedClock.now();

const codeOf = (work: () => unknown): string => {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(UntrustedCommandError);
    return (error as UntrustedCommandError).code;
  }
  throw new Error("trusted");
};

describe("judgeCommand: may this document act where it arrived?", () => {
  const platform = createSigner();
  const stranger = createSigner();
  const scope = "machine.m1.client-update";

  it("trusts a document signed for this scope with a serial newer than the one finished", () => {
    const document = platform.sign(scope, 7, { version: "2.0.0" });
    expect(judgeCommand(document, at(scope, "CLIENT_UPDATE:9"), platform.publicKey, undefined, NOW)).toEqual({
      serial: 7,
    });
    expect(
      judgeCommand(document, at(scope, "CLIENT_UPDATE:9"), platform.publicKey, { finished: 6, open: {} }, NOW),
    ).toEqual({ serial: 7 });
  });

  it("refuses anything unsigned while signing is on: no signature, a bare list, not an object", () => {
    expect(codeOf(() => judgeCommand({ version: "2.0.0" }, at(scope), platform.publicKey, undefined, NOW))).toBe(
      UntrustedReason.unsigned,
    );
    expect(codeOf(() => judgeCommand([{ os: "linux" }], at(scope), platform.publicKey, undefined, NOW))).toBe(
      UntrustedReason.unsigned,
    );
    expect(codeOf(() => judgeCommand(null, at(scope), platform.publicKey, undefined, NOW))).toBe(
      UntrustedReason.unsigned,
    );
    expect(
      codeOf(() => judgeCommand({ version: "2.0.0", signature: "" }, at(scope), platform.publicKey, undefined, NOW)),
    ).toBe(UntrustedReason.unsigned);
  });

  it("refuses another key's signature, a tampered body, tampered claims and a garbled signature", () => {
    expect(
      codeOf(() =>
        judgeCommand(stranger.sign(scope, 1, { version: "2.0.0" }), at(scope), platform.publicKey, undefined, NOW),
      ),
    ).toBe(UntrustedReason.badSignature);
    const signed = platform.sign(scope, 1, { version: "2.0.0" });
    expect(
      codeOf(() => judgeCommand({ ...signed, version: "6.6.6" }, at(scope), platform.publicKey, undefined, NOW)),
    ).toBe(UntrustedReason.badSignature);
    expect(
      codeOf(() =>
        judgeCommand(
          { ...signed, scope: "machine.m2.client-update" },
          at("machine.m2.client-update"),
          platform.publicKey,
          undefined,
          NOW,
        ),
      ),
    ).toBe(UntrustedReason.badSignature);
    expect(codeOf(() => judgeCommand({ ...signed, serial: 99 }, at(scope), platform.publicKey, undefined, NOW))).toBe(
      UntrustedReason.badSignature,
    );
    expect(
      codeOf(() =>
        judgeCommand({ ...signed, signature: "bm90IGEgc2lnbmF0dXJl" }, at(scope), platform.publicKey, undefined, NOW),
      ),
    ).toBe(UntrustedReason.badSignature);
  });

  it("refuses a valid signature that binds no scope and serial (the old format)", () => {
    expect(
      codeOf(() =>
        judgeCommand(signDocument({ version: "2.0.0" }, platform.seed), at(scope), platform.publicKey, undefined, NOW),
      ),
    ).toBe(UntrustedReason.noClaims);
    expect(codeOf(() => judgeCommand(platform.sign(scope, 0, {}), at(scope), platform.publicKey, undefined, NOW))).toBe(
      UntrustedReason.noClaims,
    );
    expect(
      codeOf(() => judgeCommand(platform.sign(scope, 1.5, {}), at(scope), platform.publicKey, undefined, NOW)),
    ).toBe(UntrustedReason.noClaims);
  });

  it("refuses a document signed for another scope: another machine, the fleet, another command, a KV key", () => {
    for (const signedFor of [
      "machine.m2.client-update",
      "machine.all.client-update",
      "machine.m1.tool-installation",
      "kv:machine.m1",
    ]) {
      expect(
        codeOf(() =>
          judgeCommand(
            platform.sign(signedFor, 5, { version: "2.0.0" }),
            at(scope),
            platform.publicKey,
            undefined,
            NOW,
          ),
        ),
      ).toBe(UntrustedReason.wrongScope);
    }
    expect(
      codeOf(() =>
        judgeCommand(platform.sign("kv:machine.m2", 5, {}), at("kv:machine.m1"), platform.publicKey, undefined, NOW),
      ),
    ).toBe(UntrustedReason.wrongScope);
    expect(
      codeOf(() =>
        judgeCommand(platform.sign("kv:machine.m1", 5, {}), at("kv:defaults"), platform.publicKey, undefined, NOW),
      ),
    ).toBe(UntrustedReason.wrongScope);
  });

  it("refuses a serial not newer than one FINISHED, and another copy of a command taken elsewhere", () => {
    const marks = { finished: 5, open: { "7": { ref: "CLIENT_UPDATE:20", acceptedAt: "2026-11-30T11:00:00Z" } } };
    const judge = (serial: number, ref: string): unknown =>
      judgeCommand(platform.sign(scope, serial, {}), at(scope, ref), platform.publicKey, marks, NOW);
    expect(codeOf(() => judge(4, "CLIENT_UPDATE:11"))).toBe(UntrustedReason.replayed);
    expect(codeOf(() => judge(5, "CLIENT_UPDATE:11"))).toBe(UntrustedReason.replayed);
    // Serial 7 is taken and not finished: the very same stored message taken again (a retry, a run
    // cut short) is that command, whatever finished beside it; the same command stored again is not.
    expect(judge(7, "CLIENT_UPDATE:20")).toEqual({ serial: 7 });
    expect(codeOf(() => judge(7, "CLIENT_UPDATE:21"))).toBe(UntrustedReason.replayed);
    // Serial 6 was never taken and is above the finished one: a command older than an open one may still run.
    expect(judge(6, "CLIENT_UPDATE:12")).toEqual({ serial: 6 });
  });

  it("refuses a command signed to expire once that time has passed", () => {
    const expiring = (expiresAt: string): unknown =>
      judgeCommand(
        signCommand({ version: "2.0.0" }, { scope, serial: 3, expiresAt }, platform.seed),
        at(scope),
        platform.publicKey,
        undefined,
        NOW,
      );
    expect(expiring("2026-11-30T12:00:01Z")).toEqual({ serial: 3 });
    expect(codeOf(() => expiring("2026-11-30T12:00:00Z"))).toBe(UntrustedReason.expired);
    // The expiry is signed: moving it changes nothing but the signature's validity.
    const signed = signCommand(
      { version: "2.0.0" },
      { scope, serial: 3, expiresAt: "2026-11-30T11:00:00Z" },
      platform.seed,
    );
    expect(
      codeOf(() =>
        judgeCommand({ ...signed, expiresAt: "2027-01-01T00:00:00Z" }, at(scope), platform.publicKey, undefined, NOW),
      ),
    ).toBe(UntrustedReason.badSignature);
  });

  it("refuses everything, clearly, when the configured key is not a public key", () => {
    const error = (() => {
      try {
        judgeCommand(platform.sign(scope, 1, {}), at(scope), "not-a-key", undefined, NOW);
      } catch (caught) {
        return caught as UntrustedCommandError;
      }
      return null;
    })();
    expect(error?.code).toBe(UntrustedReason.badSignature);
    expect(error?.message).toMatch(/is not an NKey public key/);
  });
});

describe("createCommandTrust: the gate and its durable marks", () => {
  const platform = createSigner();
  let dataDir: string;
  const gate = (publicKey: string | undefined, allowUnsigned = false): CommandTrust =>
    createCommandTrust({ publicKey, allowUnsigned, dataDir, clock: fixedClock, logger: silentLogger() });

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "edge-agent-trust-"));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("without a key refuses everything, saying how to fix it, unless unsigned commands are allowed", async () => {
    const closed = gate(undefined);
    expect(closed.mode).toBe("refused");
    expect(await closed.admit({ anything: true }, at("kv:defaults"))).toEqual({
      admitted: false,
      code: UntrustedReason.noKey,
      error: expect.stringMatching(/no configSigningKey.*allowUnsigned for development/),
      retryLater: false,
    });
    const open = gate(undefined, true);
    expect(open).toMatchObject({ signing: false, mode: "unsigned" });
    expect(await open.admit({ anything: true }, at("kv:defaults"))).toEqual({ admitted: true, serial: null });
    expect(await readdir(dataDir)).toEqual([]);
  });

  it("keeps marks per scope across a restart (in a 0600 file), so a replay after a restart is still refused", async () => {
    const first = gate(platform.publicKey);
    expect(await first.admit(platform.sign("kv:defaults", 10, {}), at("kv:defaults", "KV:1"))).toEqual({
      admitted: true,
      serial: 10,
    });
    await first.finish("kv:defaults", 10);
    expect(
      await first.admit(platform.sign("machine.m1.client-update", 3, {}), at("machine.m1.client-update", "CU:1")),
    ).toEqual({ admitted: true, serial: 3 });
    const stored = JSON.parse(await readFile(join(dataDir, HIGH_WATER_FILE), "utf8"));
    expect(stored).toEqual({
      version: 2,
      scopes: {
        "kv:defaults": { finished: 10, open: {} },
        "machine.m1.client-update": {
          finished: 0,
          open: { "3": { ref: "CU:1", acceptedAt: "2026-11-30T12:00:00.000Z" } },
        },
      },
    });

    const restarted = gate(platform.publicKey);
    expect(await restarted.admit(platform.sign("kv:defaults", 10, {}), at("kv:defaults", "KV:2"))).toMatchObject({
      admitted: false,
      code: UntrustedReason.replayed,
      retryLater: false,
    });
    expect(await restarted.admit(platform.sign("kv:defaults", 9, {}), at("kv:defaults", "KV:3"))).toMatchObject({
      admitted: false,
      code: UntrustedReason.replayed,
    });
    // The command open before the restart is taken again from where it was stored, and only from there.
    expect(
      await restarted.admit(platform.sign("machine.m1.client-update", 3, {}), at("machine.m1.client-update", "CU:1")),
    ).toEqual({ admitted: true, serial: 3 });
    expect(
      await restarted.admit(platform.sign("machine.m1.client-update", 3, {}), at("machine.m1.client-update", "CU:9")),
    ).toMatchObject({ admitted: false, code: UntrustedReason.replayed });
    // Marks are per scope: serial 4 is new for the other one.
    expect(
      await restarted.admit(platform.sign("machine.m1.client-update", 4, {}), at("machine.m1.client-update", "CU:2")),
    ).toEqual({ admitted: true, serial: 4 });
    expect((statSync(join(dataDir, HIGH_WATER_FILE)).mode & 0o777).toString(8)).toBe("600");
  });

  it("reads an earlier version's marks (the newest serial accepted per scope) as that serial finished", async () => {
    await mkdir(join(dataDir, "trust"));
    await writeFile(
      join(dataDir, HIGH_WATER_FILE),
      JSON.stringify({ marks: { "kv:defaults": { serial: 8, ref: "KV:4", acceptedAt: "2026-11-01T00:00:00Z" } } }),
    );
    const trust = gate(platform.publicKey);
    expect(await trust.admit(platform.sign("kv:defaults", 8, {}), at("kv:defaults", "KV:4"))).toMatchObject({
      admitted: false,
      code: UntrustedReason.replayed,
    });
    expect(await trust.admit(platform.sign("kv:defaults", 9, {}), at("kv:defaults", "KV:5"))).toEqual({
      admitted: true,
      serial: 9,
    });
  });

  it("gives a refusal its code and reason, and never raises a mark for a refused document", async () => {
    const trust = gate(platform.publicKey);
    const refused = await trust.admit(platform.sign("kv:machine.m2", 50, {}), at("kv:machine.m1"));
    expect(refused).toEqual({
      admitted: false,
      code: UntrustedReason.wrongScope,
      error: expect.stringMatching(
        /signed for "kv:machine.m2", but it arrived on "kv:machine.m1" \[error code EDGE_TRUST_WRONG_SCOPE\]/,
      ),
      retryLater: false,
    });
    expect(await trust.admit({ heartbeatSeconds: 1 }, at("kv:machine.m1"))).toMatchObject({
      admitted: false,
      code: UntrustedReason.unsigned,
    });
    expect(await trust.admit(platform.sign("kv:machine.m1", 2, {}), at("kv:machine.m1"))).toEqual({
      admitted: true,
      serial: 2,
    });
  });

  it("admits one of two documents judged at once for a scope, never both", async () => {
    const trust = gate(platform.publicKey);
    const results = await Promise.all([
      trust.admit(platform.sign("s", 3, {}), at("s", "A:1")),
      trust.admit(platform.sign("s", 3, {}), at("s", "A:2")),
    ]);
    expect(results.filter((result) => result.admitted)).toHaveLength(1);
  });

  it("asks to try again later, and admits nothing, when the mark cannot be written", async () => {
    const trust = gate(platform.publicKey);
    await trust.admit(platform.sign("s", 1, {}), at("s", "A:1"));
    // A file where the marks' folder should be: no write can succeed, whoever runs the test.
    await rm(join(dataDir, "trust"), { recursive: true });
    await writeFile(join(dataDir, "trust"), "");
    expect(await trust.admit(platform.sign("s", 2, {}), at("s", "A:2"))).toMatchObject({
      admitted: false,
      code: "EDGE_TRUST_STORE",
      retryLater: true,
    });
    await rm(join(dataDir, "trust"));
    // Not recorded in memory either: the same document is admitted once the disk takes it.
    expect(await trust.admit(platform.sign("s", 2, {}), at("s", "A:2"))).toEqual({ admitted: true, serial: 2 });
  });

  it("sets a damaged marks file aside and starts again from no marks", async () => {
    await mkdir(join(dataDir, "trust"));
    await writeFile(join(dataDir, HIGH_WATER_FILE), "{ damaged");
    expect(await gate(platform.publicKey).admit(platform.sign("s", 1, {}), at("s"))).toEqual({
      admitted: true,
      serial: 1,
    });
    expect((await readdir(join(dataDir, "trust"))).some((name) => name.startsWith("high-water.json.corrupt-"))).toBe(
      true,
    );
  });
});
