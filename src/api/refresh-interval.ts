// spec.refreshInterval: a Go-style duration (as in Helm values, client-go flags and CEL's
// duration()), "0" for no periodic drift checks. Shared by the offline validator and the reconciler.
import { celSecondsOf, type DurationUnits, secondsOf } from './rules.js';

/** The shortest and longest period the API accepts (the operator may raise the floor: --min-refresh-interval). */
export const REFRESH_INTERVAL_MIN_MS = 1_000;
export const REFRESH_INTERVAL_MAX_MS = 168 * 3_600_000;

/** Go duration syntax with the units that make sense here; "0" alone means never. */
export const REFRESH_INTERVAL_PATTERN = '^(0|([0-9]+(\\.[0-9]+)?(ms|s|m|h))+)$';
/** Go duration units, decimals allowed; milliseconds divided by 1000 (exact for whole seconds, unlike × 0.001). */
const REFRESH_UNITS: DurationUnits = {
  token: '[0-9]+(\\.[0-9]+)?(ms|s|m|h)',
  units: [
    ['ms', '/', 1000],
    ['h', '*', 3600],
    ['m', '*', 60],
    ['s', '*', 1],
  ],
};
const CEL_SECONDS = celSecondsOf('self', REFRESH_UNITS);
/** The same bounds as a CEL rule, so `kubectl apply` refuses what `validate` refuses. */
export const REFRESH_INTERVAL_RULE = `self == '0' || (${CEL_SECONDS} >= 1.0 && ${CEL_SECONDS} <= 604800.0)`;
export const REFRESH_INTERVAL_MESSAGE = 'must be "0" (no periodic drift checks) or between 1s and 168h';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Milliseconds of a Go-style duration ("0" is 0), or undefined when it is not one. */
export function parseRefreshInterval(text: string): number | undefined {
  if (text === '0') return 0;
  if (!new RegExp(REFRESH_INTERVAL_PATTERN).test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g))
    total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return Math.round(total);
}

/** Why a refreshInterval is not acceptable, or undefined when it is. */
export function refreshIntervalProblem(text: string): string | undefined {
  const ms = parseRefreshInterval(text);
  if (ms === undefined) return 'is not a duration (examples: 30s, 10m, 1h30m; "0" for never)';
  if (text === '0') return undefined;
  const seconds = secondsOf(text, REFRESH_UNITS);
  if (seconds < REFRESH_INTERVAL_MIN_MS / 1000 || seconds > REFRESH_INTERVAL_MAX_MS / 1000)
    return REFRESH_INTERVAL_MESSAGE;
  return undefined;
}
