export {
  buildConnectionOptions,
  CredentialFileError,
  DEFAULT_LINK_TUNING,
  type LinkTuning,
} from "./connection-options.ts";
export { createJetStreamPublisher, NO_STREAM_REASON } from "./jetstream-publisher.ts";
export { isRevisionConflict } from "./kv-errors.ts";
export {
  type ConnectionFactory,
  createNatsLink,
  defaultConnectionFactory,
  type LinkState,
  type NatsLink,
} from "./link.ts";
export { type ReadHeaders, readHeaders } from "./message-headers.ts";
export { isPermissionDenied } from "./permission-denied.ts";
export { type RpcEndpointHandler, startRpcService } from "./rpc-service.ts";
export {
  readAfter,
  readNewest,
  readNextAfter,
  type StoredCommandMessage,
  StreamUnavailableError,
} from "./stream-reads.ts";
