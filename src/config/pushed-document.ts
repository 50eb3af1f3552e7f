import { validateDocument, withoutClaims } from "./validate.ts";

/** A pushed configuration document, judged: taken with its revision and settings, or refused (with the revision its refusal reports). */
export type PushedDocumentJudgement =
  | { readonly kind: "take"; readonly revision: number; readonly settings: Record<string, unknown> }
  | { readonly kind: "refuse"; readonly revision: number; readonly reason: string };

/**
 * Judges a configuration document pushed as a file: it carries its own `revision`, which must rise
 * from one push to the next (`lastPushedRevision` is the newest taken), and must be a valid
 * document; what it sets is taken without its revision and claims.
 */
export function judgePushedDocument(document: unknown, lastPushedRevision: number): PushedDocumentJudgement {
  const claimed = (document as { revision?: unknown } | null)?.revision;
  if (typeof claimed !== "number" || !Number.isInteger(claimed) || claimed < 1)
    return {
      kind: "refuse",
      revision: lastPushedRevision,
      reason: "a pushed configuration needs a whole-number revision of 1 or more",
    };
  if (claimed <= lastPushedRevision)
    return {
      kind: "refuse",
      revision: claimed,
      reason: `revision ${claimed} is not newer than the last pushed revision ${lastPushedRevision}`,
    };
  let valid: Record<string, unknown>;
  try {
    valid = validateDocument(document, `pushed configuration revision ${claimed}`);
  } catch (error) {
    return { kind: "refuse", revision: claimed, reason: (error as Error).message };
  }
  const { revision: _ownRevision, ...settings } = withoutClaims(valid);
  return { kind: "take", revision: claimed, settings };
}
