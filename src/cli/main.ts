// The CLI behind entry.ts (the executable, which checks the Node.js version first): dispatches to a subcommand. Commands take their arguments and a CliIo and
// return an exit code, so they are tested without spawning this file.
import { readFile } from 'node:fs/promises';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, processIo, UsageError } from './io.js';

const USAGE = `Usage: oidc-client-operator COMMAND [options]

Kubernetes operator that manages OpenID Connect clients through Dynamic Client Registration
(RFC 7591/7592).

Commands:
  run [flags]                  run the operator (see run --help)
  validate FILE|DIR...         check OidcClient/OidcProvider/ClusterOidcProvider manifests offline
  import --from FILE --name N  turn an IAM client JSON into an OidcClient that adopts it, plus its Secret
  version                      print the version
  help                         show this help

Run "oidc-client-operator COMMAND --help" for a command's options.
`;

/** From package.json, found relative to this file both as src/cli/main.ts and as dist/cli/main.js. */
async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const { runOperator } = await import('../operator/run.js');
      await runOperator(rest);
      // The operator sets process.exitCode itself (e.g. 2 on bad flags); keep it.
      return Number(process.exitCode ?? EXIT_OK);
    }
    // Loaded on demand: the long-running `run` process should not hold the offline commands'
    // modules (and the YAML parser they bring).
    case 'validate':
      return (await import('./validate-command.js')).validateCommand(rest, processIo);
    case 'import':
      return (await import('./import-command.js')).importCommand(rest, processIo);
    case 'version':
    case '--version':
      processIo.out(`oidc-client-operator ${await version()}\n`);
      return EXIT_OK;
    case 'help':
    case '--help':
    case '-h':
      processIo.out(USAGE);
      return EXIT_OK;
    case undefined:
      processIo.err(USAGE);
      return EXIT_USAGE;
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

const argv = process.argv.slice(2);
try {
  process.exitCode = await main(argv);
} catch (error) {
  if (error instanceof UsageError) {
    const known = ['run', 'validate', 'import'].includes(argv[0] ?? '');
    const help = known ? `oidc-client-operator ${argv[0]} --help` : 'oidc-client-operator --help';
    processIo.err(`oidc-client-operator: ${error.message}\nRun "${help}" for usage.\n`);
    process.exitCode = EXIT_USAGE;
  } else {
    processIo.err(`oidc-client-operator: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = EXIT_FAILURE;
  }
}
