export interface Measurement {
  name: string;
  opsPerSecond: number;
  microsPerOp: number;
}

/** Runs `fn` for about `seconds` after a short warm-up; returns operations per second. */
export async function measure(name: string, fn: () => unknown | Promise<unknown>, seconds = 1.5): Promise<Measurement> {
  const warmUntil = performance.now() + 200;
  while (performance.now() < warmUntil) await fn();
  let ops = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  while (performance.now() < until) {
    for (let i = 0; i < 20; i++) await fn();
    ops += 20;
  }
  const elapsedS = (performance.now() - started) / 1000;
  return { name, opsPerSecond: ops / elapsedS, microsPerOp: (elapsedS * 1e6) / ops };
}

/** Prints measurements as a table with their ratio to the baseline measured in the same run. */
export function report(section: string, rows: Measurement[], baseline: Measurement): void {
  process.stdout.write(`\n## ${section}\n`);
  const width = Math.max(...rows.map((r) => r.name.length));
  for (const row of rows) {
    const ratio = baseline.opsPerSecond / row.opsPerSecond;
    process.stdout.write(
      `${row.name.padEnd(width)}  ${row.opsPerSecond.toFixed(0).padStart(9)} ops/s  ${row.microsPerOp.toFixed(1).padStart(9)} us/op  cost x${ratio.toFixed(2)} of baseline\n`,
    );
  }
}
