export { createRemoteConfig, type RemoteConfig, type RemoteConfigOptions } from "./remote-config.ts";
export { applyToComponents, type ConfigurableComponent, type ApplyOutcome } from "./apply.ts";
export { configGet, configPush, configSet, parseCliValue, type ConfigTarget } from "./operator.ts";
export { signDocument, verifyDocument, ConfigSignatureError } from "./signature.ts";
export { ConfigRejectedError, validateDocument } from "./validate.ts";
export { LAST_GOOD_FILE } from "./last-good-store.ts";
