/**
 * The value at index floor(fraction × n) of values sorted ascending (the last one for fraction 1),
 * or undefined when there are none: the one definition of a percentile every benchmark reports.
 */
export function quantileOfSorted(sorted: readonly number[], fraction: number): number | undefined {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}
