// Steps that create at the provider: register a client (first, again, after an interrupted
// attempt or a client gone at the provider) or adopt an existing one.
import { checkRenderable } from '../app-secret-template.js';
import type { AttemptMarker, Registration } from '../client-lifecycle.js';
import { ANNOTATION_ROTATION_TRIGGER } from '../names.js';
import type { StoredState } from '../secrets.js';
import { AGAIN, type Ctx, type StepDeps, type StepResult, type StepTable } from './context.js';

/** Registration and adoption. */
export function createSteps(
  d: StepDeps,
): Pick<StepTable, 'NeedsAdoption' | 'NeedsRegistration' | 'RegistrationPending' | 'Gone'> {
  return {
    NeedsAdoption: async (_s, c) => {
      const provider = await c.provider();
      checkRenderable(c.obs.cr, provider.endpoints);
      const r = await d.lifecycle.adopt(c.obs.cr, provider, c.obs.mgmt, c.obs.mgmtName, c.log);
      return registered(r, c);
    },

    NeedsRegistration: async (_s, c) => register(d, c),

    RegistrationPending: async (s, c) => {
      const { cr, status } = c.obs;
      const name = cr.spec.clientName ?? cr.metadata.name;
      // Without a management Secret, the marker on the OidcClient may also be that of a
      // registration stored in a Secret deleted since, while the operator was not running.
      const lost =
        !c.obs.mgmt && status.clientId
          ? ` or management Secret ${c.obs.mgmtName} (client ${status.clientId}) was deleted while the operator was away`
          : '';
      d.events.record(
        cr,
        'Warning',
        'RegistrationRetried',
        `an earlier registration attempt (${s.attempt}) did not store its result${lost}; if it reached the provider, a client named ${name} may be orphaned there`,
      );
      return register(d, c);
    },

    Gone: async (s, c) => {
      const stored = c.obs.stored as Extract<StoredState, { kind: 'managed' }>;
      const old = stored.reg.clientId;
      c.log.warn({ clientId: old }, `client gone at the provider (${s.why}); registering again`);
      const result = await register(d, c);
      const now = c.remote?.kind === 'found' ? c.remote.clientId : 'a new client';
      d.events.record(
        c.obs.cr,
        'Warning',
        'ReRegistered',
        `client ${old} is gone at the provider (${s.why}); registered ${now} instead`,
      );
      return result;
    },
  };
}

/** A new registration (first, again after a loss, or a rotation's POST tried again). */
export async function register(d: StepDeps, c: Ctx): Promise<StepResult> {
  const stored = c.obs.stored;
  const previous = stored.kind === 'empty' ? stored.previous : undefined;
  const provider = await c.provider();
  // A template that cannot render with this provider's endpoints stops before the POST.
  checkRenderable(c.obs.cr, provider.endpoints);
  // A rotation's POST tried again keeps what started it (the overlap depends on it).
  const trigger = previous ? c.obs.mgmt?.metadata?.annotations?.[ANNOTATION_ROTATION_TRIGGER] : undefined;
  const r = await d.lifecycle.register(
    c.obs.cr,
    provider,
    c.obs.mgmt,
    c.obs.mgmtName,
    previous,
    c.log,
    marker(d, c),
    trigger ? { [ANNOTATION_ROTATION_TRIGGER]: trigger } : {},
  );
  return registered(r, c);
}

/** Marks a first registration on the OidcClient (with the finalizer) and keeps what was written. */
export function marker(d: StepDeps, c: Ctx): AttemptMarker {
  return {
    mark: async (attempt) => {
      c.cr = await d.meta.mark(c.cr, attempt);
    },
    clear: async (attempt) => {
      const cleared = await d.meta.clearAttempt(c.cr, attempt);
      if (cleared) c.cr = cleared;
    },
  };
}

/** After a registration or adoption: the provider's answer doubles as the first drift check. */
export function registered(r: Registration, c: Ctx): StepResult {
  c.obs.status.ignoredFields = undefined;
  if (r.kind === 'managed') c.remote = { kind: 'found', clientId: r.reg.clientId, client: r.observed };
  return AGAIN;
}
