import { SignedClaims } from "../contracts/index.ts";
import { EdgeError } from "../errors/index.ts";
import { hasValidSignature, signDocument } from "./signature.ts";

/** Why a document was not trusted; each has its own code an operator can search for. */
export const UntrustedReason = {
  /** Not signed at all (a bare list, a KV deletion marker, a document without `signature`). */
  unsigned: "EDGE_TRUST_UNSIGNED",
  /** Signed, but not by the configured key, or changed after signing. */
  badSignature: "EDGE_TRUST_BAD_SIGNATURE",
  /** Validly signed, but without a usable `scope` and `serial` (an old-style signature). */
  noClaims: "EDGE_TRUST_NO_CLAIMS",
  /** Signed for somewhere else: another key, another machine, the fleet, another kind of command. */
  wrongScope: "EDGE_TRUST_WRONG_SCOPE",
  /** The same signed command stored again at another place, or older than one already finished on its scope. */
  replayed: "EDGE_TRUST_REPLAYED",
  /** Signed with an `expiresAt` that has passed. */
  expired: "EDGE_TRUST_EXPIRED",
  /** No signing key is configured and unsigned commands are not allowed (`allowUnsigned`). */
  noKey: "EDGE_TRUST_NO_KEY",
} as const;
export type UntrustedReason = (typeof UntrustedReason)[keyof typeof UntrustedReason];

export class UntrustedCommandError extends EdgeError {
  readonly code: UntrustedReason;
  constructor(code: UntrustedReason, message: string, options?: { readonly cause?: unknown }) {
    super(message, options);
    this.name = "UntrustedCommandError";
    this.code = code;
  }
}

/**
 * Where a document arrived: its scope, and which stored message carried it. The same stored message
 * taken again (a retry, a run cut short) is not a replay; the same document stored again is.
 */
export interface Arrival {
  /** `kv:<key>` for an `agent-config` key; for a command, the subject it came on. */
  readonly scope: string;
  /** The stored message, e.g. `CLIENT_UPDATE:42` (stream and sequence). */
  readonly ref: string;
}

/**
 * What a machine knows of one scope: the newest serial whose command FINISHED there (nothing older
 * is taken again), and the commands taken but not finished yet, by serial, with the stored message
 * each came from. A command is identified by its serial: run side by side, retried after a failure
 * or a stop, a command is never its own replay; only another copy of it, or an old one, is.
 */
export interface ScopeMarks {
  readonly finished: number;
  readonly open: Readonly<Record<string, { readonly ref: string; readonly acceptedAt: string }>>;
}

/** The scope of an `agent-config` key: `kv:defaults`, `kv:machine.<id>`. */
export const kvScope = (key: string): string => `kv:${key}`;

/**
 * The platform's side: signs `body` for `scope` with the next `serial` of that scope. The claims
 * sit beside the body's own fields, and the signature covers them all.
 */
export function signCommand<T extends Record<string, unknown>>(
  body: T,
  claims: { scope: string; serial: number; expiresAt?: string },
  seed: Uint8Array,
): T & SignedClaims {
  const { signature: _old, ...unsigned } = body;
  const expiry = claims.expiresAt === undefined ? {} : { expiresAt: claims.expiresAt };
  return signDocument({ ...unsigned, scope: claims.scope, serial: claims.serial, ...expiry }, seed) as unknown as T &
    SignedClaims;
}

/**
 * Decides whether a document may act where it arrived, as a pure function of the document, the
 * key, what the machine knows of the scope, and the time. Throws UntrustedCommandError; returns
 * the serial to record as open. The signature is checked before the claims are read, so nothing
 * unsigned can raise or probe a mark.
 */
export function judgeCommand(
  document: unknown,
  arrival: Arrival,
  publicKey: string,
  marks: ScopeMarks | undefined,
  nowMs: number,
): { readonly serial: number } {
  if (document === null || typeof document !== "object" || Array.isArray(document)) {
    throw new UntrustedCommandError(
      UntrustedReason.unsigned,
      `not signed (${Array.isArray(document) ? "a bare list" : "not a JSON object"}), and a signing key is configured`,
    );
  }
  const fields = document as Record<string, unknown>;
  if (typeof fields.signature !== "string" || fields.signature === "") {
    throw new UntrustedCommandError(UntrustedReason.unsigned, "not signed, and a signing key is configured");
  }
  let valid: boolean;
  try {
    valid = hasValidSignature(fields, fields.signature, publicKey);
  } catch (error) {
    throw new UntrustedCommandError(
      UntrustedReason.badSignature,
      `the configured signing key ${JSON.stringify(publicKey.slice(0, 8))}… is not an NKey public key: nothing signed can be checked`,
      { cause: error },
    );
  }
  if (!valid) {
    throw new UntrustedCommandError(
      UntrustedReason.badSignature,
      `the signature does not match the configured key ${publicKey.slice(0, 8)}…, or the document was changed after signing`,
    );
  }
  const claims = SignedClaims.safeParse(fields);
  if (!claims.success) {
    throw new UntrustedCommandError(
      UntrustedReason.noClaims,
      "signed without a valid scope and serial: the signature must cover where it applies and a rising serial",
    );
  }
  const { scope, serial, expiresAt } = claims.data;
  if (scope !== arrival.scope) {
    throw new UntrustedCommandError(
      UntrustedReason.wrongScope,
      `signed for ${JSON.stringify(scope)}, but it arrived on ${JSON.stringify(arrival.scope)}`,
    );
  }
  if (expiresAt !== undefined && Date.parse(expiresAt) <= nowMs) {
    throw new UntrustedCommandError(UntrustedReason.expired, `signed to expire at ${expiresAt}, which has passed`);
  }
  const open = marks?.open[String(serial)];
  if (open !== undefined) {
    if (open.ref === arrival.ref) return { serial };
    throw new UntrustedCommandError(
      UntrustedReason.replayed,
      `serial ${serial} for ${scope} was already taken from ${open.ref}: this copy at ${arrival.ref} is a replay`,
    );
  }
  if (marks && serial <= marks.finished) {
    throw new UntrustedCommandError(
      UntrustedReason.replayed,
      `serial ${serial} is not newer than serial ${marks.finished} already finished for ${scope}: an old or replayed document`,
    );
  }
  return { serial };
}
