// managementPolicy ObserveOnly: the provider is looked at, never changed.
import { type ObserveOnlyState, observedConditions } from '../client-control.js';
import { findCondition, Reason, type ReasonName } from '../conditions.js';
import type { Outcome } from '../outcome.js';
import type { StoredState } from '../secrets.js';
import type { Ctx, StepDeps, StepResult } from './context.js';

/** managementPolicy ObserveOnly: report what a Full client would have changed at the provider. */
export async function observeOnly(d: StepDeps, s: ObserveOnlyState, c: Ctx): Promise<StepResult> {
  const stalled = (reason: ReasonName, message: string): Outcome => {
    // One Event per episode, not per reconcile.
    if (findCondition(c.obs.status.conditions, 'Ready')?.reason !== reason)
      d.events.record(c.obs.cr, 'Warning', reason, message);
    return { kind: 'stalled', reason, message };
  };
  switch (s.kind) {
    case 'NothingToObserve':
      return stalled(Reason.NothingToObserve, s.message);
    case 'ObserveOnlyRefused':
      return stalled(Reason.ObserveOnly, s.message);
    case 'ObservedGone': {
      const id = c.obs.stored.kind === 'empty' ? c.obs.status.clientId : c.obs.stored.reg.clientId;
      return stalled(
        Reason.ClientGone,
        `client ${id} is gone at the provider (${s.why}); managementPolicy ObserveOnly does not register it again: adopt another registration, or set managementPolicy: Full`,
      );
    }
    case 'Observed': {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      if (c.obs.remote?.kind === 'found') d.resync.schedule(c.key);
      return d.publisher.publish(c, stored.reg, observedConditions(c.obs.status, s.drift), c.obs.remote);
    }
  }
}
