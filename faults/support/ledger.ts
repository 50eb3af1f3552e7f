/**
 * The accounting every fault scenario ends with: given what the platform stored, how many events
 * were lost and how many stored twice. Pure, so it is unit-tested on its own.
 *
 * A device numbers its events 1, 2, 3, ... (`X-Sequence`), never reusing a number. So, per machine:
 * - duplicated: a stored copy beyond the first of the same event id, or a second event id under one
 *   sequence number (a reused number: the worse defect, counted separately too);
 * - lost: a number missing below the highest stored, unless the device declared it skipped (it
 *   reserves numbers ahead and may leave some unused after a crash) or counted it evicted.
 */
export interface StoredEvent {
  readonly machineId: string;
  readonly eventId: string;
  readonly sequence: number;
}

export interface LedgerReport {
  readonly stored: number;
  readonly distinctEvents: number;
  readonly duplicated: number;
  readonly reusedSequences: number;
  readonly lost: number;
  /** The first few missing numbers per machine, for the operator reading the report. */
  readonly missingExamples: Record<string, number[]>;
}

export interface LedgerExpectations {
  /** Numbers a device declared it will never use (sorted or not), per machine. */
  readonly skipped?: ReadonlyMap<string, ReadonlySet<number>>;
  /** The highest number each device handed out, when known: numbers above the highest stored count as lost. */
  readonly lastHandedOut?: ReadonlyMap<string, number>;
}

export function accountFor(events: readonly StoredEvent[], expectations: LedgerExpectations = {}): LedgerReport {
  const byMachine = new Map<string, Map<number, Set<string>>>();
  const copiesOfEvent = new Map<string, number>();
  for (const event of events) {
    copiesOfEvent.set(event.eventId, (copiesOfEvent.get(event.eventId) ?? 0) + 1);
    let sequences = byMachine.get(event.machineId);
    if (!sequences) {
      sequences = new Map();
      byMachine.set(event.machineId, sequences);
    }
    let ids = sequences.get(event.sequence);
    if (!ids) {
      ids = new Set();
      sequences.set(event.sequence, ids);
    }
    ids.add(event.eventId);
  }
  let duplicated = 0;
  for (const copies of copiesOfEvent.values()) duplicated += copies - 1;
  let reusedSequences = 0;
  let lost = 0;
  const missingExamples: Record<string, number[]> = {};
  const machines = new Set([...byMachine.keys(), ...(expectations.lastHandedOut?.keys() ?? [])]);
  for (const machineId of machines) {
    const sequences = byMachine.get(machineId) ?? new Map<number, Set<string>>();
    for (const ids of sequences.values()) reusedSequences += ids.size - 1;
    const highestStored = Math.max(0, ...sequences.keys());
    const highest = Math.max(highestStored, expectations.lastHandedOut?.get(machineId) ?? 0);
    const skipped = expectations.skipped?.get(machineId);
    for (let sequence = 1; sequence <= highest; sequence++) {
      if (sequences.has(sequence) || skipped?.has(sequence)) continue;
      lost += 1;
      const examples = missingExamples[machineId] ?? [];
      missingExamples[machineId] = examples;
      if (examples.length < 10) examples.push(sequence);
    }
  }
  return {
    stored: events.length,
    distinctEvents: copiesOfEvent.size,
    duplicated,
    reusedSequences,
    lost,
    missingExamples,
  };
}
