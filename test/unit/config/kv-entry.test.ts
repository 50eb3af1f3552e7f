import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ConfigEntry, ConfigRejectedError, readConfigEntry } from "../../../src/config/index.ts";
import { systemClock } from "../../../src/runtime/clock.ts";
import { silentLogger } from "../../../src/runtime/logger.ts";
import { type CommandTrust, createCommandTrust } from "../../../src/trust/index.ts";
import { createSigner } from "../../helpers/signing.ts";

const encoder = new TextEncoder();
const put = (key: string, revision: number, document: unknown): ConfigEntry => ({
  key,
  revision,
  operation: "PUT",
  value: encoder.encode(JSON.stringify(document)),
  refusal: null,
});
const marker = (key: string, revision: number, operation: string): ConfigEntry => ({
  key,
  revision,
  operation,
  value: new Uint8Array(),
  refusal: null,
});

const refusal = async (entry: ConfigEntry, trust: CommandTrust): Promise<string> => {
  try {
    await readConfigEntry(entry, trust);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigRejectedError);
    return (error as Error).message;
  }
  throw new Error("accepted");
};

describe("what an agent-config KV entry means", () => {
  const platform = createSigner();
  let dataDir: string;
  let signed: CommandTrust;
  let unsigned: CommandTrust;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "edge-agent-kv-entry-"));
    signed = createCommandTrust({ publicKey: platform.publicKey, dataDir, clock: systemClock, logger: silentLogger() });
    unsigned = createCommandTrust({ allowUnsigned: true, dataDir, clock: systemClock, logger: silentLogger() });
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("a signed put for its key is settings, without the claims", async () => {
    expect(
      await readConfigEntry(put("machine.m1", 4, platform.sign("kv:machine.m1", 1, { heartbeatSeconds: 5 })), signed),
    ).toEqual({ kind: "settings", document: { heartbeatSeconds: 5 }, serial: 1 });
  });

  it("with signing on, refuses an unsigned put, a bare DEL or PURGE, and a put signed for another key", async () => {
    expect(await refusal(put("machine.m1", 4, { heartbeatSeconds: 5 }), signed)).toMatch(
      /^agent-config\/machine\.m1 revision 4: not signed.*EDGE_TRUST_UNSIGNED/,
    );
    expect(await refusal(marker("machine.m1", 5, "DEL"), signed)).toMatch(
      /an unsigned DEL is refused while signing is on; remove settings by putting a signed tombstone/,
    );
    expect(await refusal(marker("machine.m1", 6, "PURGE"), signed)).toMatch(/an unsigned PURGE is refused/);
    expect(
      await refusal(put("defaults", 7, platform.sign("kv:machine.m1", 9, { heartbeatSeconds: 5 })), signed),
    ).toMatch(/EDGE_TRUST_WRONG_SCOPE/);
  });

  it("refuses an old signed document put again after a newer one finished", async () => {
    const older = platform.sign("kv:machine.m1", 1, { heartbeatSeconds: 5 });
    await readConfigEntry(put("machine.m1", 1, older), signed);
    await signed.finish("kv:machine.m1", 1);
    await readConfigEntry(put("machine.m1", 2, platform.sign("kv:machine.m1", 2, { heartbeatSeconds: 6 })), signed);
    await signed.finish("kv:machine.m1", 2);
    expect(await refusal(put("machine.m1", 3, older), signed)).toMatch(
      /serial 1 is not newer than serial 2 .*EDGE_TRUST_REPLAYED/,
    );
  });

  it("a signed tombstone removes the key's settings; one that carries settings too is refused", async () => {
    expect(
      await readConfigEntry(put("machine.m1", 8, platform.sign("kv:machine.m1", 3, { deleted: true })), signed),
    ).toEqual({ kind: "deleted", serial: 3 });
    expect(
      await refusal(
        put("machine.m1", 9, platform.sign("kv:machine.m1", 4, { deleted: true, heartbeatSeconds: 1 })),
        signed,
      ),
    ).toMatch(/a tombstone .* carries no settings, but this one has heartbeatSeconds/);
    // An unsigned tombstone is as unsigned as anything else.
    expect(await refusal(put("machine.m1", 10, { deleted: true }), signed)).toMatch(/EDGE_TRUST_UNSIGNED/);
  });

  it("refuses an operation nobody defined, with or without signing", async () => {
    expect(await refusal(marker("machine.m1", 11, "ERASE-ALL"), signed)).toMatch(/unknown KV-Operation "ERASE-ALL"/);
    expect(await refusal(marker("machine.m1", 12, "ERASE-ALL"), unsigned)).toMatch(/unknown KV-Operation "ERASE-ALL"/);
  });

  it("without signing (allowUnsigned), unsigned puts apply, DEL and PURGE remove the key", async () => {
    expect(await readConfigEntry(put("defaults", 1, { heartbeatSeconds: 5 }), unsigned)).toEqual({
      kind: "settings",
      document: { heartbeatSeconds: 5 },
      serial: null,
    });
    expect(await readConfigEntry(marker("defaults", 2, "DEL"), unsigned)).toEqual({ kind: "deleted", serial: null });
    expect(await readConfigEntry(marker("defaults", 3, "PURGE"), unsigned)).toEqual({ kind: "deleted", serial: null });
    expect(await refusal(put("defaults", 4, { heartbeatSeconds: -1 }), unsigned)).toMatch(/heartbeatSeconds/);
  });
});
