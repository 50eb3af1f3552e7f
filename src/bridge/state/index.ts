export type { CheckpointValue, StateChange } from "./checkpoint.ts";
export {
  KafkaShardStateStore,
  type LoadedShardState,
  type ShardStateStore,
  shardStateTopic,
  shardStateTopicSpec,
} from "./shard-state-store.ts";
