// Durations in the API (spec.rotation): Go's notation (2160h, 1h30m, 10m, 0s) plus days (90d).

/** How long the previous client stays after the switch when spec.rotation.overlap is not set. */
export const DEFAULT_OVERLAP_MS = 10 * 60_000;
const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 };

/** `2160h`, `90d`, `1h30m`, `0s`, `0` in milliseconds; undefined when it is not such a duration. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (!/^([0-9]+[dhms])+$/.test(text)) return undefined;
  let ms = 0;
  for (const [, n, unit] of text.matchAll(/([0-9]+)([dhms])/g))
    ms += Number(n) * (UNIT_MS[unit as string] ?? 0);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/**
 * Problems with spec.rotation beyond its syntax (the schema's pattern reports that): a schedule
 * must be longer than the overlap, or two clients would be live all the time.
 */
export function validateRotation(rotation: unknown): { path: string; message: string }[] {
  if (!rotation || typeof rotation !== 'object') return [];
  const r = rotation as { every?: unknown; overlap?: unknown };
  if (typeof r.every !== 'string') return [];
  const every = parseDuration(r.every);
  const overlap =
    r.overlap === undefined
      ? DEFAULT_OVERLAP_MS
      : typeof r.overlap === 'string'
        ? parseDuration(r.overlap)
        : undefined;
  if (every === undefined || overlap === undefined) return [];
  if (every <= overlap) {
    const o = typeof r.overlap === 'string' ? r.overlap : '10m, the default';
    return [{ path: '/spec/rotation/every', message: `must be longer than the overlap (${o})` }];
  }
  return [];
}
