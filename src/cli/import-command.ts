// `import --from client.json --name NAME`: brings a client registered by hand (IAM dashboard or API)
// under the operator: prints the OidcClient to commit and the Secret to seal. The mapping lives in
// iam-client.ts; this module does arguments, files and messages (which never carry secret values).
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { isDns1123Label, isDns1123Subdomain } from '../api/validate.js';
import {
  adoptSecretName,
  type ExtraMetadataChoice,
  ImportError,
  importIamClient,
  type ProviderKind,
} from './iam-client.js';
import { type CliIo, EXIT_FAILURE, EXIT_OK, parseCommandArgs, UsageError } from './io.js';

export const DEFAULT_PROVIDER = 'iam';

export const IMPORT_USAGE = `Usage: oidc-client-operator import --from FILE --name NAME [options]

Turns the client JSON a provider answered a registration with (INDIGO IAM: the dashboard's JSON tab)
into manifests that let the operator take over that registration instead of creating a new client:
  - a Secret NAME-oidc-adopt holding the JSON (client secret and registration access token: seal it,
    do not commit it as is), and
  - an OidcClient NAME whose spec mirrors the client's metadata and adopts it from that Secret.
Empty values ("", null, [], {}) mean "not set". Fields outside the OidcClient spec (server-specific
settings, vendor bookkeeping) stay as the provider has them unless --extra-metadata names them.

Options:
      --from FILE              client JSON to import (required)
      --name NAME              name of the OidcClient (required, DNS-1123 subdomain)
      --namespace NS           namespace of both objects (default: none, i.e. kubectl's current one)
      --provider NAME          provider resource that manages the client (default: ${DEFAULT_PROVIDER})
      --provider-kind KIND     OidcProvider (default) or ClusterOidcProvider
      --extra-metadata KEYS    carry these non-standard fields into spec.extraMetadata (comma-separated,
                               repeatable), or "all" for every one with a value; default none
  -o, --output FILE|-          where to write the YAML (default: - = stdout; files are created 0600)
  -h, --help                   show this help
`;

const PROVIDER_KINDS: readonly ProviderKind[] = ['OidcProvider', 'ClusterOidcProvider'];

export interface ImportArgs {
  from: string;
  name: string;
  namespace?: string;
  provider: string;
  providerDefaulted: boolean;
  providerKind: ProviderKind;
  extraMetadata: ExtraMetadataChoice;
  output: string;
}

/** Parses and checks the flags; undefined means --help was asked for. */
export function parseImportArgs(args: string[]): ImportArgs | undefined {
  const { values, positionals } = parseCommandArgs(
    args,
    {
      from: { type: 'string' },
      name: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      provider: { type: 'string' },
      'provider-kind': { type: 'string', default: 'OidcProvider' },
      'extra-metadata': { type: 'string', multiple: true },
      output: { type: 'string', short: 'o', default: '-' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) return undefined;
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
  if (!values.from) throw new UsageError('--from FILE is required');
  if (!values.name) throw new UsageError('--name NAME is required');
  if (!isDns1123Subdomain(adoptSecretName(values.name))) {
    throw new UsageError('--name must be a DNS-1123 subdomain of at most 241 characters');
  }
  if (values.namespace !== undefined && !isDns1123Label(values.namespace)) {
    throw new UsageError('--namespace must be a DNS-1123 label');
  }
  if (values.provider !== undefined && !isDns1123Subdomain(values.provider)) {
    throw new UsageError('--provider must be a DNS-1123 subdomain');
  }
  const providerKind = PROVIDER_KINDS.find((k) => k === values['provider-kind']);
  if (!providerKind) throw new UsageError(`--provider-kind must be one of ${PROVIDER_KINDS.join(', ')}`);
  return {
    extraMetadata: parseExtraMetadata(values['extra-metadata']),
    from: values.from,
    name: values.name,
    namespace: values.namespace,
    provider: values.provider ?? DEFAULT_PROVIDER,
    providerDefaulted: values.provider === undefined,
    providerKind,
    output: values.output ?? '-',
  };
}

function parseExtraMetadata(values: string[] | undefined): ExtraMetadataChoice {
  const keys = [...new Set((values ?? []).flatMap((v) => v.split(',')).map((k) => k.trim()))];
  if (keys.length === 0) return 'none';
  if (keys.includes('all')) {
    if (keys.length > 1) throw new UsageError('--extra-metadata all cannot be combined with field names');
    return 'all';
  }
  if (keys.includes('')) throw new UsageError('--extra-metadata needs field names, e.g. reuse_refresh_token');
  return keys;
}

export async function importCommand(args: string[], io: CliIo): Promise<number> {
  const parsed = parseImportArgs(args);
  if (!parsed) {
    io.out(IMPORT_USAGE);
    return EXIT_OK;
  }
  let text: string;
  try {
    text = await readFile(parsed.from, 'utf8');
  } catch (error) {
    io.err(`import: cannot read ${parsed.from} (${(error as NodeJS.ErrnoException).code ?? 'error'})\n`);
    return EXIT_FAILURE;
  }

  let result: ReturnType<typeof importIamClient>;
  try {
    result = importIamClient(text, parsed);
  } catch (error) {
    if (!(error instanceof ImportError)) throw error;
    const details = error.issues.map((i) => `\n  ${i.path}: ${i.message}`).join('');
    io.err(`import: ${parsed.from}: ${error.message}${details}\n`);
    return EXIT_FAILURE;
  }

  if (parsed.output === '-') io.out(result.yaml);
  else {
    await writeFile(parsed.output, result.yaml, { mode: 0o600 });
    await chmod(parsed.output, 0o600); // mode applies only when the file is created
  }

  const notes = [
    `import: ${parsed.output === '-' ? 'wrote' : `wrote ${parsed.output} with`} Secret ${adoptSecretName(parsed.name)} and OidcClient ${parsed.name}.`,
    'import: the Secret holds the client secret and registration access token: seal it or create it out of band; commit only the OidcClient.',
  ];
  if (parsed.providerDefaulted) {
    notes.push(
      `import: providerRef is ${parsed.providerKind}/${parsed.provider} (default); change it with --provider.`,
    );
  }
  if (result.unmanaged) {
    notes.push(
      'import: the JSON has no registration access token: the provider offers no RFC 7592 management for this client, so the operator will keep its Secret but cannot update it or delete it at the provider.',
    );
  }
  if (result.dropped.length > 0) {
    notes.push(`import: issued by the provider, so not part of the spec: ${result.dropped.join(', ')}.`);
  }
  for (const { field, message } of result.notRepresentable) {
    notes.push(
      `import: ${field} left as the provider has it (an OidcClient cannot hold its value: ${message}).`,
    );
  }
  if (result.leftToProvider.length > 0) {
    notes.push(
      `import: left as the provider has them, not in the spec (add them with --extra-metadata KEY,... or all): ${result.leftToProvider.join(', ')}.`,
    );
  }
  if (result.notFound.length > 0) {
    notes.push(`import: --extra-metadata names fields the JSON does not set: ${result.notFound.join(', ')}.`);
  }
  io.err(`${notes.join('\n')}\n`);
  return EXIT_OK;
}
