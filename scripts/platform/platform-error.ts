/** Why the local platform cannot start or run: one line for the operator, exit code 1. */
export class PlatformError extends Error {
  readonly code = "EDGE_PLATFORM";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PlatformError";
  }
}
