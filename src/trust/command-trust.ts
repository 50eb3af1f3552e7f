import { fromPublic } from "@nats-io/nkeys";
import { EdgeError } from "../errors/index.ts";
import type { Clock, Logger } from "../runtime/index.ts";
import { SerialQueue, withErrorCodes } from "../runtime/index.ts";
import { type Arrival, judgeCommand, UntrustedCommandError, UntrustedReason } from "./claims.ts";
import { highWaterStore, type TrustMarks } from "./high-water-store.ts";

export class TrustStoreError extends EdgeError {
  readonly code = "EDGE_TRUST_STORE";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TrustStoreError";
  }
}

/** How long a command waits when its mark cannot be stored (a full or failing disk). */
export const TRUST_RETRY_MS = 30_000;

/** The gate's answer. A refusal is for good (report it, settle the message); `retryLater` is not. */
export type Admission =
  | {
      readonly admitted: true;
      /** Null when no signing key is configured (nothing was checked or recorded). */
      readonly serial: number | null;
    }
  | {
      readonly admitted: false;
      /** UntrustedReason, or EDGE_TRUST_STORE when the mark could not be read or written. */
      readonly code: string;
      /** For the status report: what was wrong, with the code. */
      readonly error: string;
      /** The document was not judged wrong: the mark could not be stored; take it again later. */
      readonly retryLater: boolean;
    };

/**
 * The one gate every signed document and command passes (remote configuration, pushes, tool
 * commands, self-update): the capability says where the document arrived, the gate says whether
 * it may act there.
 */
export interface CommandTrust {
  /** Whether a signing key is configured: then nothing unsigned may change anything. */
  readonly signing: boolean;
  /** How the agent takes what it is sent: `signed`, `unsigned` (allowed for development), or `refused` (no key, not allowed). */
  readonly mode: "signed" | "unsigned" | "refused";
  /**
   * Checks the signature, the scope, the expiry and that the command is neither a copy of one
   * taken elsewhere nor older than one finished on its scope, and records it as open durably before
   * answering yes: nothing a document does can come before its mark is on disk. Without a signing
   * key it admits everything when unsigned commands are allowed, and refuses everything otherwise.
   */
  admit(document: unknown, arrival: Arrival): Promise<Admission>;
  /** The command admitted with `serial` on `scope` is settled: nothing older is taken there again. */
  finish(scope: string, serial: number): Promise<void>;
}

export interface CommandTrustOptions {
  /** NKey public key (`configSigningKey`); unset: see `allowUnsigned`. */
  readonly publicKey?: string | undefined;
  /** Without a key, take unsigned commands (development only); otherwise refuse them all. */
  readonly allowUnsigned?: boolean;
  readonly dataDir: string;
  readonly clock: Clock;
  readonly logger: Logger;
}

const isPublicKey = (key: string): boolean => {
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
};

/** Open marks older than this are dropped at load: a command that never finished in a month will not. */
const OPEN_MARK_MAX_AGE_MS = 30 * 24 * 3600 * 1000;

export function createCommandTrust(options: CommandTrustOptions): CommandTrust {
  const { publicKey } = options;
  if (!publicKey) {
    if (options.allowUnsigned) {
      return {
        signing: false,
        mode: "unsigned",
        admit: async () => ({ admitted: true, serial: null }),
        finish: async () => undefined,
      };
    }
    const refusal = new UntrustedCommandError(
      UntrustedReason.noKey,
      "this agent has no configSigningKey, so it takes no command or configuration: give it the platform's signing key (enroll --config-signing-key), or set allowUnsigned for development",
    );
    return {
      signing: false,
      mode: "refused",
      admit: async () => ({
        admitted: false,
        code: refusal.code,
        error: `${refusal.message} (${refusal.code})`,
        retryLater: false,
      }),
      finish: async () => undefined,
    };
  }
  if (!isPublicKey(publicKey))
    options.logger.error(
      { configSigningKey: publicKey },
      "configSigningKey is not an NKey public key: every signed document will be refused",
    );
  const store = highWaterStore(options.dataDir, options.logger, () => options.clock.now());
  let marks: TrustMarks | null = null;
  // Judge and record in one step per document: two documents of one scope can never both pass.
  const queue = new SerialQueue();
  const nowIso = (): string => new Date(options.clock.now()).toISOString();

  const loaded = async (): Promise<TrustMarks> => {
    if (marks !== null) return marks;
    try {
      const stored = await store.load();
      const oldest = options.clock.now() - OPEN_MARK_MAX_AGE_MS;
      marks = Object.fromEntries(
        Object.entries(stored).map(([scope, mark]) => [
          scope,
          {
            finished: mark.finished,
            open: Object.fromEntries(
              Object.entries(mark.open).filter(([, open]) => Date.parse(open.acceptedAt) >= oldest),
            ),
          },
        ]),
      );
      return marks;
    } catch (error) {
      throw new TrustStoreError(`cannot read the accepted-serial marks: ${(error as Error).message}`, { cause: error });
    }
  };

  const save = async (next: TrustMarks, what: string): Promise<void> => {
    try {
      await store.save(next);
    } catch (error) {
      throw new TrustStoreError(`cannot record ${what}: ${(error as Error).message}`, { cause: error });
    }
    marks = next;
  };

  const accept = async (document: unknown, arrival: Arrival): Promise<number> => {
    const current = await loaded();
    const scopeMarks = current[arrival.scope];
    const { serial } = judgeCommand(document, arrival, publicKey, scopeMarks, options.clock.now());
    if (scopeMarks?.open[String(serial)]?.ref === arrival.ref) return serial;
    const open = { ...scopeMarks?.open, [String(serial)]: { ref: arrival.ref, acceptedAt: nowIso() } };
    await save(
      { ...current, [arrival.scope]: { finished: scopeMarks?.finished ?? 0, open } },
      `serial ${serial} for ${arrival.scope}`,
    );
    return serial;
  };

  return {
    signing: true,
    mode: "signed",
    admit(document, arrival) {
      return queue.run(async (): Promise<Admission> => {
        try {
          return { admitted: true, serial: await accept(document, arrival) };
        } catch (error) {
          if (!(error instanceof UntrustedCommandError) && !(error instanceof TrustStoreError)) throw error;
          if (error instanceof TrustStoreError)
            options.logger.error(
              { err: error, scope: arrival.scope },
              "cannot keep the accepted-serial marks; the command waits",
            );
          return {
            admitted: false,
            code: error.code,
            error: withErrorCodes(error.message, [error.code]),
            retryLater: error instanceof TrustStoreError,
          };
        }
      });
    },
    finish(scope, serial) {
      return queue.run(async () => {
        const current = await loaded();
        const scopeMarks = current[scope];
        const { [String(serial)]: _finished, ...open } = scopeMarks?.open ?? {};
        const finished = Math.max(scopeMarks?.finished ?? 0, serial);
        await save({ ...current, [scope]: { finished, open } }, `serial ${serial} finished for ${scope}`);
      });
    },
  };
}
