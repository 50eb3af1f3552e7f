/**
 * The known word closest to what the operator typed, when one is close enough to be a typo
 * (`stauts` -> `status`, `--jsn` -> `--json`, `heartbeatSecs` -> `heartbeatSeconds`); null otherwise.
 * Case is ignored; a candidate the typed word is a prefix of, or that is a prefix of it, counts as close.
 */
export function closestMatch(typed: string, candidates: readonly string[]): string | null {
  const word = typed.toLowerCase();
  if (word === "") return null;
  let best: { candidate: string; distance: number } | null = null;
  for (const candidate of candidates) {
    const lower = candidate.toLowerCase();
    const affix =
      lower.startsWith(word) || word.startsWith(lower)
        ? Math.min(1, Math.abs(lower.length - word.length))
        : Number.POSITIVE_INFINITY;
    const distance = Math.min(editDistance(word, lower), word.length >= 3 ? affix : Number.POSITIVE_INFINITY);
    if (best === null || distance < best.distance) best = { candidate, distance };
  }
  if (best === null) return null;
  // A third of the word may be wrong (at least one letter, at most four): further off is another word.
  const allowed = Math.min(4, Math.max(1, Math.floor(word.length / 3)));
  return best.distance <= allowed ? best.candidate : null;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of two neighbours. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const columns = b.length + 1;
  const table: number[][] = Array.from({ length: rows }, (_, row) =>
    Array.from({ length: columns }, (_, column) => (row === 0 ? column : column === 0 ? row : 0)),
  );
  const at = (row: number, column: number): number => table[row]?.[column] ?? Number.POSITIVE_INFINITY;
  for (let row = 1; row < rows; row++) {
    for (let column = 1; column < columns; column++) {
      const cost = a[row - 1] === b[column - 1] ? 0 : 1;
      let value = Math.min(at(row - 1, column) + 1, at(row, column - 1) + 1, at(row - 1, column - 1) + cost);
      if (row > 1 && column > 1 && a[row - 1] === b[column - 2] && a[row - 2] === b[column - 1])
        value = Math.min(value, at(row - 2, column - 2) + 1);
      (table[row] as number[])[column] = value;
    }
  }
  return at(rows - 1, columns - 1);
}

/** `: did you mean "x"?` for an error line, or nothing when no known word is close. */
export function didYouMean(
  typed: string,
  candidates: readonly string[],
  quote: (word: string) => string = (word) => word,
): string {
  const match = closestMatch(typed, candidates);
  return match === null ? "" : `: did you mean ${quote(match)}?`;
}
