export type { CheckpointValue, StateChange } from "./checkpoint.ts";
export {
  KafkaShardStateStore,
  type LoadedShardState,
  type ShardStateStore,
} from "./shard-state-store.ts";
