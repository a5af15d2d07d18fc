// Durations in the API (spec.rotation): Go's notation (2160h, 1h30m, 10m, 0s) plus days (90d).

/** A duration as in Go (2160h, 10m, 1h30m, 0s) or in days (90d). */
export const DURATION_PATTERN = '^(0|([0-9]+(d|h|m|s))+)$';

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
