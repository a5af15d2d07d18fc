// The small template language of spec.secretTemplate.data: literal text with `{{ .name }}`
// placeholders from a fixed set of names and a few pipes. No expressions, no eval, no general
// engine: what is not listed here is an error, found by the same parser in `validate`, in the
// reconciler before anything is registered, and (syntax and names) by the CRD's CEL rule.

/** Names that hold one string. */
export const SCALAR_NAMES = [
  'clientId',
  'clientSecret',
  'clientName',
  'issuer',
  'discoveryUrl',
  'tokenEndpoint',
  'authorizationEndpoint',
  'userinfoEndpoint',
  'jwksUri',
  'endSessionEndpoint',
] as const;
/** Names that hold a list: they must go through `join "<sep>"` or `first`. */
export const LIST_NAMES = ['redirectUris', 'postLogoutRedirectUris', 'scopes'] as const;

export type ScalarName = (typeof SCALAR_NAMES)[number];
export type ListName = (typeof LIST_NAMES)[number];
export type TemplateName = ScalarName | ListName;

/** What a template can read; a scalar left undefined has no value (an error unless `default`). */
export type TemplateValues = { [K in ScalarName]?: string } & { [K in ListName]: readonly string[] };

type Pipe =
  | { fn: 'join'; sep: string }
  | { fn: 'first' }
  | { fn: 'default'; value: string }
  | { fn: 'b64enc' };

type Part = string | { name: TemplateName; pipes: Pipe[] };

/** A template the parser refused, or a value it cannot be rendered with. */
export class SecretTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretTemplateError';
  }
}

const isScalar = (n: string): n is ScalarName => (SCALAR_NAMES as readonly string[]).includes(n);
const isList = (n: string): n is ListName => (LIST_NAMES as readonly string[]).includes(n);

/** What exists, for error messages; the CRD rule's message and the schema description use it too. */
export const TEMPLATE_HELP = `placeholders are {{ .name }} with name one of ${[...SCALAR_NAMES, ...LIST_NAMES].join(', ')}; lists need | join "<sep>" or | first; other pipes: | default "<text>", | b64enc`;

/** Parses one value; throws SecretTemplateError naming the problem. */
export function parseTemplate(source: string): Part[] {
  const parts: Part[] = [];
  let rest = source;
  for (;;) {
    const open = rest.indexOf('{{');
    if (open < 0) break;
    if (open > 0) parts.push(rest.slice(0, open));
    const close = rest.indexOf('}}', open + 2);
    if (close < 0) throw new SecretTemplateError(`unclosed "{{" (${TEMPLATE_HELP})`);
    parts.push(parsePlaceholder(rest.slice(open + 2, close).trim()));
    rest = rest.slice(close + 2);
  }
  if (rest) parts.push(rest);
  return parts;
}

function parsePlaceholder(body: string): Part {
  const [head = '', ...pipeTexts] = splitPipes(body);
  const m = /^\.([A-Za-z]+)$/.exec(head);
  if (!m) throw new SecretTemplateError(`"{{ ${body} }}" must start with .name (${TEMPLATE_HELP})`);
  const name = m[1] as string;
  if (!isScalar(name) && !isList(name))
    throw new SecretTemplateError(`unknown name .${name} (${TEMPLATE_HELP})`);
  const pipes = pipeTexts.map(parsePipe);
  // Type check: a list becomes a string at its first join/first, and nothing after may undo that.
  let list = isList(name);
  for (const p of pipes) {
    if (p.fn === 'join' || p.fn === 'first') {
      if (!list) throw new SecretTemplateError(`.${name}: ${p.fn} applies to a list, not a string`);
      list = false;
    } else if (list) {
      throw new SecretTemplateError(`.${name} is a list: use | join "<sep>" or | first before | ${p.fn}`);
    }
  }
  if (list) throw new SecretTemplateError(`.${name} is a list: add | join "<sep>" or | first`);
  return { name, pipes };
}

/** Splits on `|` outside double quotes. */
function splitPipes(body: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of body) {
    if (ch === '"') quoted = !quoted;
    if (ch === '|' && !quoted) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (quoted) throw new SecretTemplateError(`unterminated string in "{{ ${body} }}"`);
  out.push(cur.trim());
  return out;
}

function parsePipe(text: string): Pipe {
  if (text === 'first') return { fn: 'first' };
  if (text === 'b64enc') return { fn: 'b64enc' };
  // Quoted text holds no braces, so a "}}" inside it cannot end the placeholder early.
  const m = /^(join|default)\s+"([^"{}]*)"$/.exec(text);
  if (m)
    return m[1] === 'join' ? { fn: 'join', sep: m[2] as string } : { fn: 'default', value: m[2] as string };
  throw new SecretTemplateError(`unknown pipe "| ${text}" (${TEMPLATE_HELP})`);
}

/** The names a template reads, and whether each may go without a value (it has `| default`). */
export function templatePlaceholders(source: string): { name: TemplateName; optional: boolean }[] {
  return parseTemplate(source).flatMap((p) =>
    typeof p === 'string' ? [] : [{ name: p.name, optional: p.pipes.some((x) => x.fn === 'default') }],
  );
}

/** Renders one value; throws SecretTemplateError when a placeholder has no value and no default. */
export function renderTemplate(source: string, values: TemplateValues): string {
  return parseTemplate(source)
    .map((part) => (typeof part === 'string' ? part : renderPlaceholder(part.name, part.pipes, values)))
    .join('');
}

function renderPlaceholder(name: TemplateName, pipes: Pipe[], values: TemplateValues): string {
  let value: string | readonly string[] | undefined = values[name];
  for (const p of pipes) {
    switch (p.fn) {
      case 'join':
        value = (value as readonly string[]).join(p.sep);
        break;
      case 'first':
        value = (value as readonly string[])[0];
        break;
      case 'default':
        if (value === undefined || value === '') value = p.value;
        break;
      case 'b64enc':
        if (value !== undefined) value = Buffer.from(value as string, 'utf8').toString('base64');
        break;
    }
  }
  if (value === undefined) {
    const why = isList(name) ? 'the list is empty' : MISSING[name as ScalarName];
    throw new SecretTemplateError(`.${name} has no value (${why}); add | default "<text>" to allow that`);
  }
  return value as string;
}

const MISSING: Record<ScalarName, string> = {
  clientId: 'no client is registered',
  clientSecret: 'the provider issued no client_secret',
  clientName: 'no client name',
  issuer: 'no issuer',
  discoveryUrl: 'no discovery document',
  tokenEndpoint: "the provider's discovery document has no token_endpoint",
  authorizationEndpoint: "the provider's discovery document has no authorization_endpoint",
  userinfoEndpoint: "the provider's discovery document has no userinfo_endpoint",
  jwksUri: "the provider's discovery document has no jwks_uri",
  endSessionEndpoint: "the provider's discovery document has no end_session_endpoint",
};

/** Renders every key; the first failure names its key. */
export function renderData(data: Record<string, string>, values: TemplateValues): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, source] of Object.entries(data)) {
    try {
      out[key] = renderTemplate(source, values);
    } catch (error) {
      if (error instanceof SecretTemplateError)
        throw new SecretTemplateError(`spec.secretTemplate.data.${key}: ${error.message}`);
      throw error;
    }
  }
  return out;
}

// ---- the same grammar as one RE2-compatible regular expression, for the CRD's CEL rule --------

const alt = (names: readonly string[]) => names.join('|');
const S = '\\s*';
const STR = '"[^"{}]*"';
const SCALAR_PIPE = `${S}\\|${S}(b64enc|default\\s+${STR})`;
const PLACEHOLDER =
  `\\{\\{${S}(\\.(${alt(SCALAR_NAMES)})|\\.(${alt(LIST_NAMES)})${S}\\|${S}(join\\s+${STR}|first))` +
  `(${SCALAR_PIPE})*${S}\\}\\}`;

/** Matches exactly the values parseTemplate accepts (a unit test compares both on random input). */
export const TEMPLATE_VALUE_PATTERN = `^([^{]|\\{[^{]|${PLACEHOLDER})*\\{?$`;
