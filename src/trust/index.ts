export { arrivalOf, judgeCommand, kvScope, signCommand, UntrustedCommandError, UntrustedReason, type Arrival, type HighWaterMark } from "./claims.ts";
export { createCommandTrust, TRUST_RETRY_MS, TrustStoreError, type Admission, type CommandTrust, type CommandTrustOptions } from "./command-trust.ts";
export { HIGH_WATER_FILE } from "./high-water-store.ts";
export { signDocument } from "./signature.ts";
