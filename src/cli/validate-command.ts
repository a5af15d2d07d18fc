// `validate FILE|DIR...`: offline check of manifests before they are committed or applied (Git
// workflow, CI). Parsing and validation live in manifests.ts; this module does arguments, files, output.
import { readFile } from 'node:fs/promises';
import { collectManifestFiles, isJsonFile } from './files.js';
import { type CliIo, EXIT_FAILURE, EXIT_OK, parseCommandArgs, UsageError } from './io.js';
import { checkManifestText, type ManifestReport } from './manifests.js';

export const VALIDATE_USAGE = `Usage: oidc-client-operator validate [--quiet] [--format text|json] FILE|DIR...

Checks OidcClient, OidcProvider and ClusterOidcProvider manifests offline against the operator's
schema (the one the CRDs are generated from), including the CRDs' CEL rules with the messages
kubectl apply would print, and the checks only the operator makes. Directories are searched
recursively for .yaml, .yml and .json files; objects of other API groups are counted and skipped.
CEL transition rules (e.g. providerRef is immutable) need the stored object and run only on the server.

Each issue is printed as
  FILE:DOC: KIND/NAME: /json/pointer: message      (DOC = 0-based index of the YAML document)

Options:
  -q, --quiet          print issues only, no summary
      --format FORMAT  text (default) or json
  -h, --help           show this help

Exit status: 0 no issues, 1 issues found, 2 usage error.
`;

export interface FileResult {
  file: string;
  report: ManifestReport;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function summarize(results: readonly FileResult[]) {
  let documents = 0;
  let validated = 0;
  let skipped = 0;
  let issues = 0;
  for (const { report } of results) {
    documents += report.documents;
    validated += report.validated;
    skipped += report.skipped;
    issues += report.issues.length;
  }
  return { files: results.length, documents, validated, skipped, issues };
}

export function formatText(results: readonly FileResult[], opts: { quiet?: boolean } = {}): string {
  const lines: string[] = [];
  for (const { file, report } of results) {
    for (const issue of report.issues) {
      const where = `${file}:${issue.document}`;
      if (issue.path === '') lines.push(`${where}: ${issue.message}`);
      else {
        const object = `${issue.kind ?? '<no kind>'}/${issue.name ?? '<no name>'}`;
        lines.push(`${where}: ${object}: ${issue.path}: ${issue.message}`);
      }
    }
  }
  if (!opts.quiet) {
    const s = summarize(results);
    lines.push(
      `${plural(s.files, 'file')}, ${plural(s.documents, 'document')}: ${s.validated} validated, ` +
        `${s.skipped} skipped, ${s.issues === 0 ? 'no issues' : plural(s.issues, 'issue')}`,
    );
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function formatJson(results: readonly FileResult[]): string {
  const issues = results.flatMap(({ file, report }) => report.issues.map((issue) => ({ file, ...issue })));
  return `${JSON.stringify({ ...summarize(results), issues }, null, 2)}\n`;
}

async function checkFile(file: string): Promise<FileResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const issue = { document: 0, path: '', message: `cannot read file (${code})` };
    return { file, report: { documents: 0, validated: 0, skipped: 0, issues: [issue] } };
  }
  return { file, report: checkManifestText(text, { json: isJsonFile(file) }) };
}

export async function validateCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    args,
    {
      quiet: { type: 'boolean', short: 'q' },
      format: { type: 'string', default: 'text' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    io.out(VALIDATE_USAGE);
    return EXIT_OK;
  }
  if (values.format !== 'text' && values.format !== 'json') {
    throw new UsageError(`--format must be text or json, not ${JSON.stringify(values.format)}`);
  }
  if (positionals.length === 0) throw new UsageError('validate needs at least one FILE or DIR');

  const files = await collectManifestFiles(positionals);
  const results: FileResult[] = [];
  for (const file of files) results.push(await checkFile(file));

  io.out(values.format === 'json' ? formatJson(results) : formatText(results, { quiet: values.quiet }));
  return summarize(results).issues > 0 ? EXIT_FAILURE : EXIT_OK;
}
