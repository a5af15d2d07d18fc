// The provider side of the operator: RFC 7591 registration and RFC 7592 management.
export { createProviderAgent } from './agent.js';
export { RegistrationClient, type RegistrationClientOptions } from './client.js';
export { type DiscoverOptions, discoverEndpoints, IAM_REGISTRATION_PATH } from './discovery.js';
export * from './errors.js';
export {
  diffSpecified,
  extraMetadataConflicts,
  type FieldDifference,
  formatProviderForms,
  isUnsetValue,
  judgeWrite,
  metadataForUpdate,
  type ProviderForms,
  parseProviderForms,
  parseRegistrationResponse,
  specToMetadata,
  type WriteVerdict,
} from './metadata.js';
export { ManagementOrigins, OriginConfigError, parseOrigin } from './origins.js';
export type * from './types.js';
