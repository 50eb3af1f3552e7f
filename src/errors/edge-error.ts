/**
 * The base of every error of ours. `code` is what an operator searches for (docs/error-codes.md
 * lists each, with what to do) and what code decides on: never the message, which is for people and
 * may be reworded. `cause`, the error this one came from, is kept whenever there is one, so a log
 * line shows the whole chain down to the library's own error.
 */
export abstract class EdgeError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }
}
