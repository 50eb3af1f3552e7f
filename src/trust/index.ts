export { canonicalJson } from "./canonical-json.ts";
export {
  type Arrival,
  judgeCommand,
  kvScope,
  type ScopeMarks,
  signCommand,
  UntrustedCommandError,
  UntrustedReason,
} from "./claims.ts";
export {
  type Admission,
  type CommandTrust,
  type CommandTrustOptions,
  createCommandTrust,
  TRUST_RETRY_MS,
  TrustStoreError,
} from "./command-trust.ts";
export { HIGH_WATER_FILE } from "./high-water-store.ts";
export { signDocument } from "./signature.ts";
