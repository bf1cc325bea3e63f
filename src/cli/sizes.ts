/** Parse sizes like `256M`, `1G`, `65536`, `64KiB` into bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*(k|kib|m|mib|g|gib)?$/i.exec(text.trim());
  if (m === null) throw new Error(`Not a size: ${text} (use e.g. 256M, 1G)`);
  const unit = (m[2] ?? '').toLowerCase()[0];
  const shift = unit === 'k' ? 10 : unit === 'm' ? 20 : unit === 'g' ? 30 : 0;
  const value = Number(m[1]) * 2 ** shift;
  if (!Number.isSafeInteger(value)) throw new Error(`Size too large: ${text}`);
  return value;
}

export function formatSize(bytes: number): string {
  for (const [unit, shift] of [
    ['GiB', 30],
    ['MiB', 20],
    ['KiB', 10],
  ] as const) {
    if (bytes >= 2 ** shift && bytes % 2 ** shift === 0) return `${bytes / 2 ** shift} ${unit}`;
  }
  return `${bytes} B`;
}
