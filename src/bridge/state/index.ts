export type { CheckpointValue, StateChange } from "./checkpoint.ts";
export {
  InheritedStateLostError,
  KafkaShardStateStore,
  type LoadedShardState,
  type Predecessor,
  PredecessorNotDrainedError,
  type ShardStateStore,
} from "./shard-state-store.ts";
