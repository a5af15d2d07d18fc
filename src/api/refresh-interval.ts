// spec.refreshInterval: a Go-style duration (as in Helm values, client-go flags and CEL's
// duration()), "0" for no periodic drift checks. Shared by the offline validator and the reconciler.

/** The shortest and longest period the API accepts (the operator may raise the floor: --min-refresh-interval). */
export const REFRESH_INTERVAL_MIN_MS = 1_000;
export const REFRESH_INTERVAL_MAX_MS = 168 * 3_600_000;

/** Go duration syntax with the units that make sense here; "0" alone means never. */
export const REFRESH_INTERVAL_PATTERN = '^(0|([0-9]+(\\.[0-9]+)?(ms|s|m|h))+)$';
/**
 * CEL: the seconds of a refreshInterval, summed as doubles. Not `duration()`: a value the pattern
 * allows (e.g. 9999999h) can overflow Go's duration, and the apiserver then answers with a type
 * conversion error instead of the rule's message.
 */
const CEL_SECONDS =
  "self.findAll('[0-9]+(\\\\.[0-9]+)?(ms|s|m|h)').map(t, t.endsWith('ms') ? double(t.substring(0, size(t) - 2)) / 1000.0 : double(t.substring(0, size(t) - 1)) * (t.endsWith('h') ? 3600.0 : t.endsWith('m') ? 60.0 : 1.0)).sum()";
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

/** CEL_SECONDS' twin: the same doubles, summed in the same order (no rounding). */
function celSeconds(text: string): number {
  let sum = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    const unit = m[2] as keyof typeof UNIT_MS;
    sum += unit === 'ms' ? Number(m[1]) / 1000 : Number(m[1]) * (UNIT_MS[unit] / 1000);
  }
  return sum;
}

/** Why a refreshInterval is not acceptable, or undefined when it is. */
export function refreshIntervalProblem(text: string): string | undefined {
  const ms = parseRefreshInterval(text);
  if (ms === undefined) return 'is not a duration (examples: 30s, 10m, 1h30m; "0" for never)';
  if (text === '0') return undefined;
  const seconds = celSeconds(text);
  if (seconds < REFRESH_INTERVAL_MIN_MS / 1000 || seconds > REFRESH_INTERVAL_MAX_MS / 1000)
    return REFRESH_INTERVAL_MESSAGE;
  return undefined;
}
