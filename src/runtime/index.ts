export { removeAbandonedTemporaries, syncDirectorySync, writeFileAtomic } from "./atomic-file.ts";
export { jitteredBackoff, type ReconnectBackoff, retryDelayMs } from "./backoff.ts";
export { type Cancel, type Clock, sleepOn, systemClock, systemTimers, type Timers, timersOf } from "./clock.ts";
export { closestMatch, didYouMean } from "./closest-match.ts";
export { type DataDirLock, DataDirLockedError, lockDataDir, readLockHolder } from "./data-dir-lock.ts";
export { describeIssues, echoInput, truncateInput } from "./echo.ts";
export { withErrorCodes } from "./error-code.ts";
export {
  assertSafeExecutableLocation,
  executableLocationProblem,
  folderLocationProblem,
  UnsafeExecutableLocationError,
} from "./executable-location.ts";
export { FaultLatch } from "./fault-latch.ts";
export { fullGarbageCollector } from "./full-gc.ts";
export { osNameOf, PROCESS_UID, type SignalOutcome, signalProcess } from "./host.ts";
export { type HostPattern, hostAllowed, hostPatternsOf, parseHostPattern } from "./host-pattern.ts";
export { watchForIdle } from "./idle-watch.ts";
export { damagedFileName, type JsonStateFile, readJsonStateFile, setAsideDamagedFile } from "./json-state-file.ts";
export { KeyedSerialQueue } from "./keyed-queue.ts";
export { LinkInPathError, linkFreeDirectory, placeFileWithoutLinks } from "./link-free-path.ts";
export { createLogThrottle } from "./log-throttle.ts";
export {
  createLogger,
  createLoggerFamily,
  LOG_LEVELS,
  type Logger,
  type LoggerFamily,
  silentLogger,
} from "./logger.ts";
export { runShutdownSteps, type ShutdownStep } from "./ordered-shutdown.ts";
export { ensurePrivateFile, makePrivateDir } from "./private-file.ts";
export { SerialQueue } from "./serial-queue.ts";
export { SqliteResult, sqliteResultCode } from "./sqlite-errors.ts";
export { AGENT_TYPE, AGENT_VERSION } from "./version.ts";
