// Which namespaces may use a ClusterOidcProvider, in the style of External Secrets'
// ClusterSecretStore `spec.conditions`: a namespace is allowed when ANY condition names it or
// selects it by its labels. No conditions at all means every namespace (the documented default).
import type { ClusterProviderCondition } from '../api/types.generated.js';
import { matchesSelector } from './label-selector.js';

export interface NamespaceFacts {
  name: string;
  /** Undefined when the namespace's labels are not known (yet). */
  labels?: Record<string, string>;
}

export type AccessDecision =
  | { allowed: true; why: 'no-conditions' | 'by-name' | 'by-selector' }
  | { allowed: false; why: 'not-matched' }
  /** Only a label selector could still allow it, and the labels are unknown. */
  | { allowed: undefined; why: 'labels-unknown' };

export function namespaceAccess(
  conditions: ClusterProviderCondition[] | undefined,
  ns: NamespaceFacts,
): AccessDecision {
  if (conditions === undefined) return { allowed: true, why: 'no-conditions' };
  if (conditions.some((c) => c.namespaces?.includes(ns.name))) return { allowed: true, why: 'by-name' };
  const selectors = conditions.flatMap((c) => (c.namespaceSelector ? [c.namespaceSelector] : []));
  if (selectors.length === 0) return { allowed: false, why: 'not-matched' };
  if (ns.labels === undefined) return { allowed: undefined, why: 'labels-unknown' };
  const labels = ns.labels;
  return selectors.some((s) => matchesSelector(s, labels))
    ? { allowed: true, why: 'by-selector' }
    : { allowed: false, why: 'not-matched' };
}
