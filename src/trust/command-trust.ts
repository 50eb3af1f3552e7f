import { fromPublic } from "@nats-io/nkeys";
import type { Clock } from "../runtime/clock.ts";
import { withErrorCodes } from "../runtime/error-code.ts";
import type { Logger } from "../runtime/logger.ts";
import { SerialQueue } from "../runtime/serial-queue.ts";
import { type Arrival, judgeCommand, UntrustedCommandError } from "./claims.ts";
import { highWaterStore, type StoredMarks } from "./high-water-store.ts";

export class TrustStoreError extends Error {
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
  /**
   * Checks the signature, the scope and that the serial is newer than any accepted for the scope,
   * and records the serial durably before answering yes: nothing a document does can come before
   * its mark is on disk. Without a signing key it admits everything and records nothing.
   */
  admit(document: unknown, arrival: Arrival): Promise<Admission>;
}

export interface CommandTrustOptions {
  /** NKey public key (`configSigningKey`); unset: signatures are not required. */
  readonly publicKey?: string | undefined;
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

export function createCommandTrust(options: CommandTrustOptions): CommandTrust {
  const { publicKey } = options;
  if (!publicKey) return { signing: false, admit: async () => ({ admitted: true, serial: null }) };
  if (!isPublicKey(publicKey))
    options.logger.error(
      { configSigningKey: publicKey },
      "configSigningKey is not an NKey public key: every signed document will be refused",
    );
  const store = highWaterStore(options.dataDir, options.logger, () => options.clock.now());
  let marks: StoredMarks["marks"] | null = null;
  // Judge and record in one step per document: two documents of one scope can never both pass.
  const queue = new SerialQueue();

  const accept = async (document: unknown, arrival: Arrival): Promise<number> => {
    if (marks === null) {
      try {
        marks = await store.load();
      } catch (error) {
        throw new TrustStoreError(`cannot read the accepted-serial marks: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    const mark = judgeCommand(document, arrival, publicKey, marks[arrival.scope]);
    const next = { ...marks, [arrival.scope]: { ...mark, acceptedAt: new Date(options.clock.now()).toISOString() } };
    try {
      await store.save(next);
    } catch (error) {
      throw new TrustStoreError(
        `cannot record serial ${mark.serial} for ${arrival.scope}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    marks = next;
    return mark.serial;
  };

  return {
    signing: true,
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
  };
}
