import { describe, expect, it } from 'vitest';
import type { ClusterProviderCondition, LabelSelector } from '../../../src/api/types.generated.js';
import { matchesSelector, selectorProblems } from '../../../src/policy/label-selector.js';
import { namespaceAccess } from '../../../src/policy/namespace-access.js';

describe('label selectors (apiserver semantics)', () => {
  const labels = { tier: 'prod', team: 'a' };
  it('matchLabels needs every pair; an empty selector matches everything', () => {
    expect(matchesSelector({}, labels)).toBe(true);
    expect(matchesSelector({}, {})).toBe(true);
    expect(matchesSelector({ matchLabels: { tier: 'prod' } }, labels)).toBe(true);
    expect(matchesSelector({ matchLabels: { tier: 'prod', team: 'b' } }, labels)).toBe(false);
    expect(matchesSelector({ matchLabels: { tier: 'prod' } }, {})).toBe(false);
  });

  it('In, NotIn, Exists, DoesNotExist; NotIn and DoesNotExist hold for a missing key', () => {
    const sel = (operator: string, values?: string[]): LabelSelector => ({
      matchExpressions: [{ key: 'tier', operator: operator as 'In', ...(values ? { values } : {}) }],
    });
    expect(matchesSelector(sel('In', ['prod', 'dev']), labels)).toBe(true);
    expect(matchesSelector(sel('In', ['dev']), labels)).toBe(false);
    expect(matchesSelector(sel('In', ['dev']), {})).toBe(false);
    expect(matchesSelector(sel('NotIn', ['prod']), labels)).toBe(false);
    expect(matchesSelector(sel('NotIn', ['dev']), labels)).toBe(true);
    expect(matchesSelector(sel('NotIn', ['prod']), {})).toBe(true);
    expect(matchesSelector(sel('Exists'), labels)).toBe(true);
    expect(matchesSelector(sel('Exists'), {})).toBe(false);
    expect(matchesSelector(sel('DoesNotExist'), labels)).toBe(false);
    expect(matchesSelector(sel('DoesNotExist'), {})).toBe(true);
  });

  it('a malformed selector matches nothing and says why', () => {
    const bad: LabelSelector = { matchExpressions: [{ key: 'tier', operator: 'In', values: [] }] };
    expect(selectorProblems(bad)).toEqual(['matchExpressions[0] (tier): In needs at least one value']);
    expect(matchesSelector(bad, labels)).toBe(false);
    const bad2: LabelSelector = {
      matchExpressions: [{ key: 'tier', operator: 'DoesNotExist', values: ['x'] }],
    };
    expect(matchesSelector(bad2, {})).toBe(false);
    expect(selectorProblems({ matchExpressions: 'nope' } as unknown as LabelSelector)).toEqual([]);
  });
});

describe('namespaceAccess (ClusterOidcProvider spec.conditions)', () => {
  const ns = (name: string, labels?: Record<string, string>) => ({ name, labels });
  it('no conditions: every namespace (the documented default)', () => {
    expect(namespaceAccess(undefined, ns('anything'))).toEqual({ allowed: true, why: 'no-conditions' });
  });

  it('an empty list (only possible on objects the CRD did not check) allows nothing', () => {
    expect(namespaceAccess([], ns('a', {})).allowed).toBe(false);
  });

  it('by name, by selector, any condition suffices', () => {
    const conditions: ClusterProviderCondition[] = [
      { namespaces: ['team-a', 'team-b'] },
      { namespaceSelector: { matchLabels: { 'oidc-access': 'shared' } } },
    ];
    expect(namespaceAccess(conditions, ns('team-b')).why).toBe('by-name');
    expect(namespaceAccess(conditions, ns('other', { 'oidc-access': 'shared' })).why).toBe('by-selector');
    expect(namespaceAccess(conditions, ns('other', { 'oidc-access': 'no' }))).toEqual({
      allowed: false,
      why: 'not-matched',
    });
  });

  it('names are exact (no prefix match), and labels are needed only for selectors', () => {
    expect(namespaceAccess([{ namespaces: ['team'] }], ns('team-evil')).allowed).toBe(false);
    expect(namespaceAccess([{ namespaces: ['team'] }], ns('x')).allowed).toBe(false);
    expect(namespaceAccess([{ namespaceSelector: {} }], ns('x'))).toEqual({
      allowed: undefined,
      why: 'labels-unknown',
    });
    expect(namespaceAccess([{ namespaceSelector: {} }], ns('x', {})).allowed).toBe(true);
  });
});
