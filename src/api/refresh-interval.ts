// spec.refreshInterval: a Go-style duration (as in Helm values, client-go flags and CEL's
// duration()), "0" for no periodic drift checks. Shared by the offline validator and the reconciler.

/** The shortest and longest period the API accepts (the operator may raise the floor: --min-refresh-interval). */
export const REFRESH_INTERVAL_MIN_MS = 1_000;
export const REFRESH_INTERVAL_MAX_MS = 168 * 3_600_000;

/** Go duration syntax with the units that make sense here; "0" alone means never. */
export const REFRESH_INTERVAL_PATTERN = '^(0|([0-9]+(\\.[0-9]+)?(ms|s|m|h))+)$';
/** The same bounds as a CEL rule, so `kubectl apply` refuses what `validate` refuses. */
export const REFRESH_INTERVAL_RULE = `self == '0' || (duration(self) >= duration('1s') && duration(self) <= duration('168h'))`;
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
  if (ms !== 0 && (ms < REFRESH_INTERVAL_MIN_MS || ms > REFRESH_INTERVAL_MAX_MS))
    return REFRESH_INTERVAL_MESSAGE;
  return undefined;
}
