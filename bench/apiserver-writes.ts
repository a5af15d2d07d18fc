// Counts write requests the kube-apiserver served, from its apiserver_request_total counter, by
// "VERB resource". Taken before and after a phase, the difference is what that phase wrote.
import { diff, parseMetrics, sumBy } from './prom.js';

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'DELETECOLLECTION', 'APPLY']);
/** What the operator writes; everything else is the apiserver's and controller manager's housekeeping. */
export const OPERATOR_RESOURCES = new Set(['oidcclients', 'oidcclients/status', 'secrets', 'events']);

export type WriteCounts = Map<string, number>;

/** From the text of the apiserver's /metrics. */
export function apiserverWrites(metricsText: string): WriteCounts {
  // Several MB of histograms; parse only the counter's lines.
  const lines = metricsText.split('\n').filter((l) => l.startsWith('apiserver_request_total{'));
  return sumBy(parseMetrics(lines.join('\n')), 'apiserver_request_total', (l) => {
    if (!l.verb || !WRITE_VERBS.has(l.verb) || l.dry_run) return undefined;
    const resource = l.subresource ? `${l.resource}/${l.subresource}` : (l.resource ?? '?');
    return `${l.verb} ${resource}`;
  });
}

export interface WriteSummary {
  total: number;
  /** Writes to OidcClients (except kubectl's creates), their status, Secrets and Events. */
  operatorResources: number;
  byVerbResource: Record<string, number>;
}

export function summarizeWrites(before: WriteCounts, after: WriteCounts): WriteSummary {
  const d = diff(before, after);
  let total = 0;
  let operatorResources = 0;
  for (const [key, n] of d) {
    total += n;
    const [verb, resource] = key.split(' ') as [string, string];
    // kubectl creates the OidcClients; the operator never does.
    if (OPERATOR_RESOURCES.has(resource) && !(verb === 'POST' && resource === 'oidcclients')) {
      operatorResources += n;
    }
  }
  const byVerbResource = Object.fromEntries([...d].sort((a, b) => b[1] - a[1]));
  return { total, operatorResources, byVerbResource };
}
