/** One fault scenario of `npm run faults`: it injects faults, then accounts for every event. */
export interface FaultScenario {
  readonly name: string;
  /** One line for the report: what it does to the agent. */
  readonly summary: string;
  /** Why it cannot run here (e.g. needs root to mount a tmpfs), or null. */
  readonly unavailable?: () => string | null;
  run(): Promise<ScenarioResult>;
}

export interface ScenarioResult {
  /** Faults injected or hostile inputs sent. */
  readonly cases: number;
  /** Of those, the ones after which the agent was still up (or came back) and did what it should. */
  readonly survived: number;
  /** Events the device accepted that never reached the platform. */
  readonly lost: number;
  /** Extra stored copies of one event. */
  readonly duplicated: number;
  /** Sequence numbers handed to two different events. */
  readonly reusedSequences: number;
  /** Events the platform stored for this scenario. */
  readonly events: number;
  /** Scenario-specific figures and, for a failed case, what went wrong. */
  readonly details: Record<string, unknown>;
}

/** A pseudo-random sequence from a seed: a run can be repeated exactly (`FAULTS_SEED`). */
export function seededRandom(seed: number): () => number {
  let state = seed % 2147483647 || 1;
  return () => {
    state = (state * 16807) % 2147483647;
    return state / 2147483647;
  };
}
