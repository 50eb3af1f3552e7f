export {
  type Capability,
  type CapabilityContext,
  type CapabilityFactory,
  type ConfigApplier,
  GatheredContributions,
  type LinkUp,
  type OutboxCounts,
  type PushedFileTarget,
} from "./capability.ts";
export {
  type CommandDelivery,
  type CommandDesk,
  type CommandHandler,
  type CommandOutcome,
  type CommandRoute,
  type CommandRouteHandle,
  done,
  doneThen,
  type RefusalContext,
  reject,
  retryAfter,
  retryWithBackoff,
} from "./command-handler.ts";
