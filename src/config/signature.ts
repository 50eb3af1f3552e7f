import { fromPublic, fromSeed } from "@nats-io/nkeys";
import { canonicalJson } from "./canonical-json.ts";

export class ConfigSignatureError extends Error {
  readonly code = "EDGE_CONFIG_SIGNATURE";
  constructor(message: string) {
    super(message);
    this.name = "ConfigSignatureError";
  }
}

const encoder = new TextEncoder();

/** The signed bytes: the document's canonical JSON without its `signature` field. */
function signedBytes(document: Record<string, unknown>): Uint8Array {
  const { signature: _signature, ...rest } = document;
  return encoder.encode(canonicalJson(rest));
}

/** Signs with an NKey seed (e.g. `SU...`, `SA...`, `SO...`); the signature is base64. */
export function signDocument<T extends Record<string, unknown>>(document: T, seed: Uint8Array): T & { signature: string } {
  const key = fromSeed(seed);
  return { ...document, signature: Buffer.from(key.sign(signedBytes(document))).toString("base64") };
}

/** Throws unless the document carries a valid Ed25519 signature by `publicKey`. */
export function verifyDocument(document: Record<string, unknown>, publicKey: string): void {
  const signature = document.signature;
  if (typeof signature !== "string" || signature === "") throw new ConfigSignatureError("the document is not signed, and a signing key is configured");
  let valid = false;
  try {
    valid = fromPublic(publicKey).verify(signedBytes(document), new Uint8Array(Buffer.from(signature, "base64")));
  } catch (error) {
    throw new ConfigSignatureError(`cannot check the signature: ${(error as Error).message}`);
  }
  if (!valid) throw new ConfigSignatureError(`the signature does not match the configured key ${publicKey.slice(0, 8)}…`);
}
