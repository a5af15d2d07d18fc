// The OidcClient fields that control how the operator treats one client (how often it checks,
// whether it may write to the provider) and the status fields that go with them. Kept apart from
// schema.ts so these controls stay one small module.
import {
  parseRefreshInterval,
  REFRESH_INTERVAL_MESSAGE,
  REFRESH_INTERVAL_PATTERN,
  REFRESH_INTERVAL_RULE,
  refreshIntervalProblem,
} from './refresh-interval.js';
import { cel } from './rules.js';
import { oneOf, type Schema, str } from './schema-builder.js';

export const controlProperties: Record<string, Schema> = {
  refreshInterval: str(
    'How often the operator re-reads the client at the provider (RFC 7592 GET) and repairs drift, as a duration (30s, 10m, 1h30m; at least 1s, at most 168h). "0" turns periodic checks off (spec changes and the check-now annotation still check). Defaults to the operator\'s --resync-interval; the operator raises values below its --min-refresh-interval to that floor. Checks are spread with ±10% jitter.',
    {
      maxLength: 32,
      pattern: REFRESH_INTERVAL_PATTERN,
      'x-kubernetes-validations': [
        // Offline twin: the same bounds, for values that match the pattern (others fail the pattern).
        cel(REFRESH_INTERVAL_RULE, REFRESH_INTERVAL_MESSAGE, (self) => {
          if (typeof self !== 'string' || parseRefreshInterval(self) === undefined) return true;
          return refreshIntervalProblem(self) === undefined;
        }),
      ],
    },
  ),
  managementPolicy: oneOf(
    ['Full', 'ObserveOnly'],
    'What the operator may do at the provider. Full: register, update (repair drift), delete. ObserveOnly: take over the credentials of an existing registration (spec.adoptFrom) or keep those of one already stored, read it (GET) and report drift as Synced=False reason Drifted, but never register (POST), update (PUT) or delete (DELETE) it; deleting the OidcClient leaves the client registered, as with deletionPolicy: Orphan.',
    { default: 'Full' },
  ),
};

export const controlStatusProperties: Record<string, Schema> = {
  checkNowHandled: str(
    'The last value of the oidc.dcr-operator.dev/check-now annotation the operator carried out; a different value asks for one more check.',
  ),
};
