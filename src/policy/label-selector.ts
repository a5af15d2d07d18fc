// Kubernetes label selectors (matchLabels + matchExpressions) evaluated the way the apiserver
// does: every part must hold, NotIn and DoesNotExist hold for a missing key, an empty selector
// matches everything. A malformed selector matches nothing (fail closed).
import type { LabelSelector, LabelSelectorRequirement } from '../api/types.generated.js';

/** What is wrong with a selector (the CRD rejects these at apply time; this guards older objects). */
export function selectorProblems(selector: LabelSelector): string[] {
  // Also called by the offline validator on unchecked input: skip what is not even shaped right.
  const expressions: unknown[] = Array.isArray(selector.matchExpressions) ? selector.matchExpressions : [];
  return expressions.flatMap((r, i) => {
    if (typeof r !== 'object' || r === null) return [];
    const req = r as LabelSelectorRequirement;
    const problem = requirementProblem(req);
    return problem ? [`matchExpressions[${i}] (${req.key}): ${problem}`] : [];
  });
}

function requirementProblem(r: LabelSelectorRequirement): string | undefined {
  const n = Array.isArray(r.values) ? r.values.length : 0;
  switch (r.operator) {
    case 'In':
    case 'NotIn':
      return n > 0 ? undefined : `${r.operator} needs at least one value`;
    case 'Exists':
    case 'DoesNotExist':
      return n === 0 ? undefined : `${r.operator} takes no values`;
    default:
      return `unknown operator ${String(r.operator)}`;
  }
}

export function matchesSelector(selector: LabelSelector, labels: Record<string, string> = {}): boolean {
  if (selectorProblems(selector).length > 0) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  return (selector.matchExpressions ?? []).every((r) => matchesRequirement(r, labels));
}

function matchesRequirement(r: LabelSelectorRequirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = labels[r.key];
  switch (r.operator) {
    case 'In':
      return has && (r.values ?? []).includes(value as string);
    case 'NotIn':
      return !has || !(r.values ?? []).includes(value as string);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    default:
      return false;
  }
}
