import type { Logger } from "../../runtime/index.ts";

/** The process events the guards listen to (the process itself; an EventEmitter in tests). */
export interface ProcessEventSource {
  on(event: "uncaughtException", listener: (error: Error) => void): unknown;
  on(event: "unhandledRejection", listener: (reason: unknown) => void): unknown;
  off(event: "uncaughtException", listener: (error: Error) => void): unknown;
  off(event: "unhandledRejection", listener: (reason: unknown) => void): unknown;
}

/**
 * An exactly-once process does not go on after a failure nobody handled: whatever it was doing
 * may be half done, and only a fresh start (fence, read the checkpoint back) is known to be sound.
 * So an uncaught exception leaves at once, and an unhandled rejection stops the bridge (the open
 * transactions commit or abort, within the shutdown deadline) and exits 1, for the service
 * manager to start it again. Nothing is lost either way: NATS keeps every event Kafka has not
 * committed. Returns a function that removes the guards.
 */
export function guardProcess(
  source: ProcessEventSource,
  logger: Logger,
  actions: { readonly stop: () => void; readonly leaveNow: () => void },
): () => void {
  const onException = (error: Error): void => {
    logger.fatal(
      { err: error },
      "uncaught exception: exiting so the service manager restarts the bridge (Kafka and NATS keep the state)",
    );
    actions.leaveNow();
  };
  const onRejection = (reason: unknown): void => {
    logger.fatal(
      { err: reason },
      "unhandled promise rejection: stopping so the service manager restarts the bridge (nothing is acked that Kafka has not committed)",
    );
    actions.stop();
  };
  source.on("uncaughtException", onException);
  source.on("unhandledRejection", onRejection);
  return () => {
    source.off("uncaughtException", onException);
    source.off("unhandledRejection", onRejection);
  };
}
