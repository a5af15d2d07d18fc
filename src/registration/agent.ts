// One keep-alive undici Agent per provider: connections are reused across calls, and a private CA
// replaces the default trust store when the provider resource names one.
import { Agent } from './undici.js';

export function createProviderAgent(caPem?: string): Agent {
  // `connect.ca` replaces Node's bundled roots: with a CA configured only that CA is trusted.
  return new Agent(caPem ? { connect: { ca: caPem } } : {});
}
