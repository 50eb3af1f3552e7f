import { fromPublic, fromSeed } from "@nats-io/nkeys";
import { canonicalJson } from "./canonical-json.ts";

const encoder = new TextEncoder();

/** The signed bytes: the document's canonical JSON without its `signature` field. */
function signedBytes(document: Record<string, unknown>): Uint8Array {
  const { signature: _signature, ...rest } = document;
  return encoder.encode(canonicalJson(rest));
}

/** Signs with an NKey seed (e.g. `SU...`, `SA...`, `SO...`); the signature is base64. */
export function signDocument<T extends Record<string, unknown>>(
  document: T,
  seed: Uint8Array,
): T & { signature: string } {
  const key = fromSeed(seed);
  return { ...document, signature: Buffer.from(key.sign(signedBytes(document))).toString("base64") };
}

/**
 * Whether `signature` is a valid Ed25519 signature by `publicKey` over the rest of the document.
 * Throws only when the key itself is unusable (a settings mistake, not a bad document).
 */
export function hasValidSignature(document: Record<string, unknown>, signature: string, publicKey: string): boolean {
  const key = fromPublic(publicKey);
  try {
    return key.verify(signedBytes(document), new Uint8Array(Buffer.from(signature, "base64")));
  } catch {
    // A signature of the wrong length is simply not a valid one.
    return false;
  }
}
