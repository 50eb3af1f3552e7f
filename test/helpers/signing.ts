import { createUser } from "@nats-io/nkeys";
import { signCommand } from "../../src/trust/index.ts";

/**
 * The platform's side of signed configuration and commands, for tests: a fresh NKey pair, and
 * `sign(scope, serial, body)` giving the body with `scope`, `serial` and `signature` (docs/DESIGN.md,
 * "Commands and signatures"). The agent is started with `publicKey` as `configSigningKey`.
 */
export interface TestSigner {
  readonly publicKey: string;
  readonly seed: Uint8Array;
  sign<T extends Record<string, unknown>>(
    scope: string,
    serial: number,
    body: T,
  ): T & { scope: string; serial: number; signature: string };
}

export function createSigner(): TestSigner {
  const pair = createUser();
  const seed = pair.getSeed();
  return {
    publicKey: pair.getPublicKey(),
    seed,
    sign: (scope, serial, body) => signCommand(body, { scope, serial }, seed),
  };
}
