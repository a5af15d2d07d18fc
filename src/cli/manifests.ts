// Pure part of `validate`: parses the text of one manifest file (multi-document YAML, or JSON) and
// validates every object of our API group in it. No I/O, so it is unit-tested directly.
import { type Document, isMap, isScalar, isSeq, LineCounter, parseAllDocuments } from 'yaml';
import { validateResource } from '../api/validate.js';
import { parseJson } from './safe-json.js';

export interface ManifestIssue {
  /** 0-based index of the document in the file (the n-th `---` section). */
  document: number;
  kind?: string;
  name?: string;
  /** JSON pointer into the document ('/' = the document itself); empty for YAML/JSON syntax errors. */
  path: string;
  message: string;
  /** 1-based line of the offending node (or its nearest existing parent), when known. */
  line?: number;
}

export interface ManifestReport {
  /** Non-empty documents. */
  documents: number;
  /** Objects of our API group that were validated (a v1 List counts each item). */
  validated: number;
  /** Other objects: other API groups, or YAML that is not a Kubernetes object at all. */
  skipped: number;
  issues: ManifestIssue[];
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const unescapePointer = (s: string): string => s.replace(/~1/g, '/').replace(/~0/g, '~');

/** Start line of a node: the key of a mapping entry, so a missing field points at its parent's key. */
function startLine(lines: LineCounter, node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range ? lines.linePos(range[0]).line : undefined;
}

/** 1-based line of the YAML node at `pointer`, or of its closest ancestor that exists. */
function lineOf(
  doc: Document | undefined,
  lines: LineCounter | undefined,
  pointer: string,
): number | undefined {
  if (!doc || !lines) return undefined;
  const segments = pointer.split('/').slice(1).filter(Boolean).map(unescapePointer);
  for (let n = segments.length; n >= 1; n--) {
    const parent = n === 1 ? doc.contents : doc.getIn(segments.slice(0, n - 1), true);
    const segment = segments[n - 1];
    if (isMap(parent)) {
      const pair = parent.items.find(
        (p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === segment,
      );
      if (pair) return startLine(lines, pair.key);
    } else if (isSeq(parent)) {
      const item = parent.items[Number(segment)];
      if (item) return startLine(lines, item);
    }
  }
  return startLine(lines, doc.contents);
}

interface ParsedDocument {
  value: unknown;
  doc?: Document;
  error?: { message: string; line?: number };
}

function parseDocuments(text: string, json: boolean): { docs: ParsedDocument[]; lines?: LineCounter } {
  if (json) {
    const parsed = parseJson(text);
    return { docs: [parsed.ok ? { value: parsed.value } : { value: undefined, error: parsed.error }] };
  }
  const lines = new LineCounter();
  // prettyErrors would append the offending source line to messages; it may hold a secret.
  const docs = Array.from(parseAllDocuments(text, { lineCounter: lines, prettyErrors: false }), (doc) => {
    const first = doc.errors[0];
    if (first) {
      const { line, col } = lines.linePos(first.pos[0]);
      return {
        value: undefined,
        doc,
        error: { message: `${first.message} at line ${line}, column ${col}`, line },
      };
    }
    try {
      return { value: doc.toJS() as unknown, doc };
    } catch (error) {
      return {
        value: undefined,
        doc,
        error: { message: error instanceof Error ? error.message : String(error) },
      };
    }
  });
  return { docs, lines };
}

/** The objects a document holds: itself, or the items of a `kind: List` (what `kubectl get -o yaml` prints). */
function objectsOf(value: Record<string, unknown>): { prefix: string; obj: unknown }[] {
  if (value.apiVersion === 'v1' && value.kind === 'List' && Array.isArray(value.items)) {
    return value.items.map((obj: unknown, i) => ({ prefix: `/items/${i}`, obj }));
  }
  return [{ prefix: '', obj: value }];
}

export function checkManifestText(text: string, opts: { json?: boolean } = {}): ManifestReport {
  const report: ManifestReport = { documents: 0, validated: 0, skipped: 0, issues: [] };
  const { docs, lines } = parseDocuments(text, opts.json ?? false);
  docs.forEach(({ value, doc, error }, document) => {
    if (error) {
      report.documents++;
      report.issues.push({ document, path: '', message: `syntax error: ${error.message}`, line: error.line });
      return;
    }
    if (value === null || value === undefined) return; // empty document, e.g. a trailing `---`
    report.documents++;
    if (!isRecord(value) || (value.apiVersion === undefined && value.kind === undefined)) {
      report.skipped++; // not a Kubernetes object (e.g. a Helm values file next to the manifests)
      return;
    }
    for (const { prefix, obj } of objectsOf(value)) {
      const result = validateResource(obj);
      if (!result.checked) {
        report.skipped++;
        continue;
      }
      report.validated++;
      const metadata = isRecord(obj) && isRecord(obj.metadata) ? obj.metadata : {};
      const name = typeof metadata.name === 'string' ? metadata.name : undefined;
      for (const issue of result.issues) {
        const path = issue.path === '/' ? prefix || '/' : `${prefix}${issue.path}`;
        report.issues.push({
          document,
          kind: result.kind,
          name,
          path,
          message: issue.message,
          line: lineOf(doc, lines, path),
        });
      }
    }
  });
  return report;
}
