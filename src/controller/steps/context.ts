// What every step of the reconciler shares: the context one step sees and what it returns.
import type { Logger } from 'pino';
import type { OidcClient } from '../../api/types.generated.js';
import type { EventRecorder } from '../../kube/events.js';
import type { ClientLifecycle } from '../client-lifecycle.js';
import type { ClientMetadata } from '../client-metadata.js';
import type { ClientState, Observation, RemoteObservation } from '../client-state.js';
import type { ManagementSecrets } from '../management-secrets.js';
import type { Outcome } from '../outcome.js';
import type { ResolvedProvider } from '../providers.js';
import type { ResyncSchedule } from '../resync-schedule.js';
import type { RotationSteps } from '../rotation-steps.js';
import type { Publisher } from './publish.js';

/** A step that changed local state and wants the loop to observe again. */
export const AGAIN = Symbol('again');
export type StepResult = Outcome | typeof AGAIN;

/** What one step sees: the observation, the status being built, and the provider on demand. */
export interface Ctx {
  obs: Observation;
  /** The OidcClient as last written by this reconcile (finalizer, marker), else as observed. */
  cr: OidcClient;
  key: string;
  log: Logger;
  provider(): Promise<ResolvedProvider>;
  /** Set by steps that learned the provider's view of the client (register, adopt, check). */
  remote?: RemoteObservation;
}

export type Step<K extends ClientState['kind']> = (
  s: Extract<ClientState, { kind: K }>,
  c: Ctx,
) => Promise<StepResult>;

/** One step per state. */
export type StepTable = { [K in ClientState['kind']]: Step<K> };

/** The collaborators the steps use. */
export interface StepDeps {
  events: EventRecorder;
  mgmtSecrets: ManagementSecrets;
  meta: ClientMetadata;
  lifecycle: ClientLifecycle;
  resync: ResyncSchedule;
  publisher: Publisher;
  rotation: RotationSteps;
}
