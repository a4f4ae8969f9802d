// Secret redaction for the corpus: a model can regurgitate what it was trained on, so credentials
// are replaced before tokenizing. Rule families in the spirit of gitleaks / detect-secrets (our
// own patterns): provider token formats with a distinctive prefix, private-key blocks, passwords
// in URLs, quoted assignments to password/secret/token names, and high-entropy values assigned to
// key-like names. Each secret becomes a typed placeholder such as `<SECRET:aws_access_key>` while
// the code around it (variable name, quotes, separators) stays, so the model still learns the
// shape of configuration code, never the value.
//
// Speed and safety: every pattern starts with a literal or a keyword and has bounded quantifiers,
// so a scan is linear in the text (no catastrophic backtracking on a 10 MB single line or a run of
// a million 'a's); rules whose literal cannot occur in the text are skipped with a cheap
// `includes` pre-filter.

import { isUtf8 } from 'node:buffer';

export interface Redaction {
  text: string;
  /** Number of redactions per rule id (only rules that fired). */
  counts: Record<string, number>;
}

/** A detector: a span finder plus the placeholder type. */
interface SecretRule {
  /** Placeholder type and key of the counts, e.g. 'github_token'. */
  id: string;
  /** Global, `d`-flagged regex; the named group `secret` (or else the whole match) is redacted. */
  pattern?: RegExp;
  /** Instead of a pattern: returns [start, end) spans to redact. */
  find?: (text: string) => Array<[number, number]>;
  /** The rule runs only if the text contains one of these (case-sensitive) literals. */
  anyOf?: string[];
  /** Rejects a candidate (placeholders, references to variables, values that are not random). */
  accept?: (text: string, start: number, end: number, m: RegExpExecArray) => boolean;
  /** Placeholder type per match when it depends on the match (password vs secret). */
  label?: (m: RegExpExecArray) => string;
}

const PLACEHOLDER_PREFIX = '<SECRET:';

export function placeholder(id: string): string {
  return `${PLACEHOLDER_PREFIX}${id}>`;
}

// ---------------------------------------------------------------------------------------------
// Value tests

/** Shannon entropy of the string's characters, in bits per character. */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

function charClass(c: number): number {
  if (c >= 97 && c <= 122) return 0; // a-z
  if (c >= 65 && c <= 90) return 1; // A-Z
  if (c >= 48 && c <= 57) return 2; // 0-9
  return 3;
}

const HAS_DIGIT = /[0-9]/;
const HAS_LETTER = /[A-Za-z]/;
const HEX_ONLY = /^[0-9a-fA-F]+$/;
/** A word of a name: letters with an optional number at the end ("trainingHistory", "v2"), or a number. */
const WORDY_SEGMENT = /^(?:[A-Za-z]+[0-9]{0,4}|[0-9]+)$/;

/**
 * True when the value reads as words joined by separators ("workspace-lm.trainingHistory.v2",
 * "test-token-1234"): storage keys, i18n keys and test dummies, whose Shannon entropy is as high as
 * a key's. A random string puts digits between letters, so its segments are not all words.
 */
function isWordy(value: string): boolean {
  return value.split(/[._/+=~-]+/).every((seg) => seg === '' || WORDY_SEGMENT.test(seg));
}

/** The generic-rule test for a value assigned to a key-like name: long, mixed and random-looking. */
export function looksRandom(value: string): boolean {
  if (value.length < 20 || !HAS_DIGIT.test(value) || !HAS_LETTER.test(value) || isWordy(value)) return false;
  // Random hex of length 20+ has ~3.4+ bits/char (max 4), random base64 ~4+; prose-like names less.
  const minEntropy = HEX_ONLY.test(value) ? 3.0 : 3.5;
  return shannonEntropy(value) >= minEntropy;
}

/** Variable references and templates stand for a secret kept elsewhere: nothing to redact. */
const REFERENCE = /^(?:\$|%\(|%s|\{\{|<%|#\{|\{[A-Za-z_]|process\.env|os\.environ|env\(|ENV\[)/;
/** Values that name a placeholder rather than being one (form labels, enum values, docs). */
const DUMMY_VALUES = new Set([
  'password', 'passwd', 'pass', 'pwd', 'secret', 'token', 'apikey', 'api_key', 'key', 'none', 'null', 'nil', 'undefined',
  'true', 'false', 'string', 'required', 'optional', 'hidden', 'text', 'changeme', 'redacted', 'example', 'placeholder',
  'your_password', 'yourpassword', 'your_token', 'your_api_key', 'your-api-key', 'xxx', 'xxxx', 'xxxxxx', 'dummy', 'test',
]);

/** A name mentioning what it names ("challengePassword", "auth-token-header"): a label, not a value. */
const NAMES_A_SECRET = /pass|pwd|secret|token|key|auth|credential/i;

function isDummy(value: string): boolean {
  if (value.includes(PLACEHOLDER_PREFIX) || REFERENCE.test(value)) return true;
  // Interpolation anywhere (`ghp_${suffix}`, "pre-{{ var }}"): an expression, not a literal.
  if (value.includes('${') || value.includes('{{')) return true;
  if (!/[A-Za-z0-9]/.test(value) || /^[xX]+$/.test(value)) return true; // masked: "********", ":****", "xxxx"
  if (NAMES_A_SECRET.test(value) && isWordy(value)) return true;
  return DUMMY_VALUES.has(value.toLowerCase());
}

const IDENT_CHAR = /[A-Za-z0-9_$.-]/;

/**
 * The keyword that a name-based rule matched must end an identifier and start either the
 * identifier or a word of it: `db_password`, `dbPassword`, `DB_PASSWORD`, not `bypass` or `monkey`.
 */
function keywordStartsWord(text: string, start: number): boolean {
  if (start === 0) return true;
  const prev = text.charCodeAt(start - 1);
  const first = text.charCodeAt(start);
  const prevClass = charClass(prev);
  if (prevClass === 3) return true; // _, -, ., space, quote…
  // camelCase boundary: "apiKey", "dbPassword"; digits before a word: "s3Secret".
  return charClass(first) === 1 && (prevClass === 0 || prevClass === 2);
}

/** The whole identifier that ends at `end` (e.g. "stripePublicKey" for the match "Key"). */
function identifierEndingAt(text: string, end: number): string {
  let i = end;
  while (i > 0 && end - i < 80 && IDENT_CHAR.test(text[i - 1]!)) i--;
  return text.slice(i, end);
}

// ---------------------------------------------------------------------------------------------
// Private-key blocks (PEM, OpenSSH, PGP), also inside string literals with "\n" escapes

const KEY_HEADER = /-----BEGIN ((?:[A-Z0-9]+ ){0,4})PRIVATE KEY( BLOCK)?-----/g;

/** Characters of a key body: base64, PEM/PGP armor headers, whitespace, "\n" escapes, string concatenation. */
function isKeyBodyChar(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57)
    || c === 43 || c === 47 || c === 61 // + / =
    || c === 32 || c === 9 || c === 10 || c === 13
    || c === 92 || c === 34 || c === 39 // \ " '
    || c === 58 || c === 44 || c === 46 || c === 40 || c === 41 // : , . ( )
    || c === 45; // - (PEM headers "Proc-Type", "DEK-Info"); "-----" ends the body
}

/** Key material: a base64 run of 40+ characters with digits and both cases (not a code identifier). */
const KEY_MATERIAL = /[A-Za-z0-9+/]{40,}/g;

function hasKeyMaterial(body: string): boolean {
  KEY_MATERIAL.lastIndex = 0;
  let m;
  while ((m = KEY_MATERIAL.exec(body)) !== null) {
    const run = m[0];
    if (HAS_DIGIT.test(run) && /[a-z]/.test(run) && /[A-Z]/.test(run)) return true;
  }
  return false;
}

function findPrivateKeys(text: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  KEY_HEADER.lastIndex = 0;
  while (KEY_HEADER.exec(text) !== null) {
    let end = KEY_HEADER.lastIndex;
    while (end < text.length && isKeyBodyChar(text.charCodeAt(end)) && !text.startsWith('-----', end)) end++;
    // Keep the layout around the key: leading/trailing whitespace, "\n" escapes and quotes.
    let s = KEY_HEADER.lastIndex;
    let e = end;
    for (;;) {
      if (s < e && /[\s"']/.test(text[s]!)) s++;
      else if (s + 1 < e && text[s] === '\\' && /[nrt]/.test(text[s + 1]!)) s += 2;
      else break;
    }
    for (;;) {
      if (e > s && /[\s"']/.test(text[e - 1]!)) e--;
      else if (e - 1 > s && text[e - 2] === '\\' && /[nrt]/.test(text[e - 1]!)) e -= 2;
      else break;
    }
    // A header in parsing code ("-----BEGIN PRIVATE KEY-----" as a string to search for) has no key material after it.
    if (e > s && hasKeyMaterial(text.slice(s, e))) spans.push([s, e]);
    KEY_HEADER.lastIndex = Math.max(end, KEY_HEADER.lastIndex);
  }
  return spans;
}

// ---------------------------------------------------------------------------------------------
// Name-based rules

/** Names whose quoted literal value is a password. */
const PASSWORD_WORDS = 'pass(?:word|wd|phrase)?|pwd';
/** Names whose quoted literal value is a secret (checked for digits: "keyword.operator" is a lexer token type). */
const SECRET_WORDS = 'secret(?:[_-]?key)?|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|auth[_-]?key|credentials?';
/** Key-like names for the high-entropy rule (the value must also look random). */
const KEYLIKE_WORDS = `${PASSWORD_WORDS}|${SECRET_WORDS}|key|salt|signature|hmac|cookie|auth|bearer|session[_-]?id`;

/** `name` then `=`, `:`, `:=`, `=>`, `==` (comparisons leak too), with optional closing quote/bracket of the key. */
const ASSIGN = `(?![A-Za-z0-9_-])["'\\]]{0,2}[ \\t]{0,8}(?::=|=>|={1,3}|!==?|:)[ \\t]{0,8}`;

const QUOTED_ASSIGNMENT = new RegExp(
  `(?<name>${PASSWORD_WORDS}|${SECRET_WORDS})${ASSIGN}(?:[rbuf]{1,2}(?=["'\`]))?(?<q>["'\`])(?<secret>(?:(?!\\k<q>)[^\\n\\r\\\\]|\\\\[^\\n\\r]){1,300})\\k<q>`,
  'gid',
);

/** Shell / env / compose style: UPPER_SNAKE name, `=` without spaces, unquoted value. */
const ENV_ASSIGNMENT = /(?<name>PASSWORD|PASSWD|PASS|PWD|SECRET|SECRET_KEY|TOKEN|API_KEY|APIKEY|ACCESS_KEY|PRIVATE_KEY)=(?<secret>[^\s'"`$\\;&|<>(){}[\]]{4,200})/dg;

// The value is grabbed inside a lookahead, which is atomic in JS: a run of value characters that
// fails the checks after it is not retried at every shorter length ("key=key=key=…" stays linear).
const KEYLIKE_ASSIGNMENT = new RegExp(
  `(?<name>${KEYLIKE_WORDS})${ASSIGN}(?:[rbuf]{1,2}(?=["'\`]))?(?<q>["'\`]?)(?=(?<secret>[A-Za-z0-9+/=_.~-]{20,1000}))\\k<secret>(?![A-Za-z0-9+/=_.~-])`,
  'gid',
);

/** `pwd` is also "print working directory": a path is not a password. */
const PATH_LIKE = /^(?:~|\.{0,2})\/[\w./-]*$/;

function isPasswordName(name: string): boolean {
  return /^(?:pass|pwd)/i.test(name);
}

function nameIsSecretish(text: string, m: RegExpExecArray): boolean {
  if (!keywordStartsWord(text, m.index)) return false;
  // Public keys and their ids are not secrets ("stripePublicKey", "public_key").
  const name = identifierEndingAt(text, m.index + m.groups!.name!.length);
  return !/public|publishable/i.test(name);
}

function acceptQuotedAssignment(text: string, start: number, end: number, m: RegExpExecArray): boolean {
  if (!nameIsSecretish(text, m)) return false;
  const value = text.slice(start, end);
  if (/\s/.test(value) || isDummy(value)) return false;
  if (isPasswordName(m.groups!.name!)) {
    if (PATH_LIKE.test(value)) return false;
    return value.length >= 4;
  }
  return value.length >= 8 && HAS_DIGIT.test(value) && HAS_LETTER.test(value);
}

function acceptEnvAssignment(text: string, start: number, end: number, m: RegExpExecArray): boolean {
  const prev = m.index > 0 ? text[m.index - 1]! : ' ';
  if (!/[^A-Za-z0-9]/.test(prev)) return false; // part of a longer word: "BYPASS=1"
  const value = text.slice(start, end);
  if (isPasswordName(m.groups!.name!) && PATH_LIKE.test(value)) return false;
  return !isDummy(value) && !/^\d{1,3}$/.test(value);
}

const MEMBER_EXPRESSION = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$/;

function acceptKeylike(text: string, start: number, end: number, m: RegExpExecArray): boolean {
  if (!nameIsSecretish(text, m)) return false;
  const q = m.groups!.q!;
  if (q !== '') {
    if (text[end] !== q) return false;
  } else {
    // Unquoted (YAML, INI, shell): the value must end the statement, not start an expression.
    const rest = /^[ \t]*(?:[\r\n;,#})\]]|$)/;
    if (!rest.test(text.slice(end, end + 64))) return false;
    // A member expression or a type ("self._lib.NID_x", "rsa.RSAPrivateKey") is code, not a literal.
    if (MEMBER_EXPRESSION.test(text.slice(start, end))) return false;
  }
  const value = text.slice(start, end);
  return !isDummy(value) && looksRandom(value);
}

const labelOfAssignment = (m: RegExpExecArray): string => (isPasswordName(m.groups!.name!) ? 'password' : 'secret');

// ---------------------------------------------------------------------------------------------
// The rules, in the order they run: specific formats first, so their placeholder names the
// provider; the name-based rules then skip values already redacted.

const randomish = (_text: string, start: number, end: number, m: RegExpExecArray): boolean => {
  const v = m.input.slice(start, end);
  return HAS_DIGIT.test(v) && HAS_LETTER.test(v);
};

const RULES: SecretRule[] = [
  { id: 'private_key', find: findPrivateKeys, anyOf: ['PRIVATE KEY'] },

  // AWS: access key ids have a 4-letter type prefix and 16 base32 characters.
  { id: 'aws_access_key', pattern: /\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])/dg },
  {
    id: 'aws_secret_key',
    pattern: /(?:secret[_-]?access[_-]?key|aws[_-]?secret(?:[_-]?access)?[_-]?key)["'\]]{0,2}[ \t]{0,8}(?::=|=>|[:=])[ \t]{0,8}["']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/dgi,
  },

  // Google Cloud: API keys, service-account key ids (the key itself is a PEM block), OAuth client secrets.
  { id: 'gcp_api_key', anyOf: ['AIza'], pattern: /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/dg },
  { id: 'gcp_service_account', anyOf: ['private_key_id'], pattern: /"private_key_id"[ \t]*:[ \t]*"(?<secret>[0-9a-f]{40})"/dg },
  { id: 'gcp_oauth_secret', anyOf: ['GOCSPX-'], pattern: /\bGOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])/dg },

  // Azure: storage/service-bus account keys in connection strings, SAS signatures, AAD client secrets.
  { id: 'azure_storage_key', anyOf: ['AccountKey=', 'SharedAccessKey='], pattern: /\b(?:AccountKey|SharedAccessKey)=(?<secret>[A-Za-z0-9+/]{40,100}={0,2})/dg },
  { id: 'azure_sas', anyOf: ['sig='], pattern: /[?&;]sig=(?<secret>[A-Za-z0-9%+/]{40,200}(?:%3D|=){0,2})/dgi },
  { id: 'azure_client_secret', anyOf: ['Q~'], pattern: /(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/dg },

  // Code hosts.
  { id: 'github_token', anyOf: ['gh', 'github_pat_'], pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])/dg },
  { id: 'gitlab_token', anyOf: ['gl', 'GR1348941'], pattern: /\b(?:gl(?:pat|dt|rt|ptt|cbt|soat|ft|imt|agent)-[A-Za-z0-9_-]{20,255}|GR1348941[A-Za-z0-9_-]{20,255})(?![A-Za-z0-9_-])/dg },

  // Chat and payments.
  { id: 'slack_token', anyOf: ['xox', 'xapp-'], pattern: /\b(?:xox[abposre]-[A-Za-z0-9-]{10,250}|xapp-[0-9]-[A-Za-z0-9-]{10,250})(?![A-Za-z0-9-])/dg },
  { id: 'slack_webhook', anyOf: ['hooks.slack.com'], pattern: /hooks\.slack\.com\/(?:services|workflows|triggers)\/(?<secret>[A-Za-z0-9+/_-]{20,200})/dg },
  { id: 'discord_webhook', anyOf: ['discord'], pattern: /discord(?:app)?\.com\/api\/webhooks\/(?<secret>[0-9]{10,25}\/[A-Za-z0-9_-]{40,100})/dg },
  { id: 'telegram_bot_token', anyOf: [':AA'], pattern: /\b[0-9]{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])/dg },
  { id: 'stripe_key', anyOf: ['k_live_', 'k_test_', 'whsec_'], pattern: /\b(?:[rs]k_(?:live|test)_[A-Za-z0-9]{16,247}|whsec_[A-Za-z0-9]{24,100})(?![A-Za-z0-9])/dg },
  { id: 'twilio_key', anyOf: ['SK', 'AC'], pattern: /\b(?:SK|AC)[0-9a-f]{32}(?![A-Za-z0-9])/dg },
  { id: 'sendgrid_key', anyOf: ['SG.'], pattern: /\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/dg },
  { id: 'mailgun_key', anyOf: ['key-'], pattern: /\bkey-[0-9a-f]{32}(?![A-Za-z0-9])/dg },
  { id: 'mailchimp_key', anyOf: ['-us'], pattern: /\b[0-9a-f]{32}-us[0-9]{1,2}(?![A-Za-z0-9])/dg },
  { id: 'shopify_token', anyOf: ['shp'], pattern: /\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![A-Za-z0-9])/dg },

  // AI providers: Anthropic before OpenAI ("sk-ant-…" would otherwise read as an OpenAI key).
  { id: 'anthropic_key', anyOf: ['sk-ant-'], pattern: /\bsk-ant-[A-Za-z0-9_-]{20,250}(?![A-Za-z0-9_-])/dg },
  {
    id: 'openai_key', anyOf: ['sk-'], accept: randomish,
    pattern: /\bsk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,250}(?![A-Za-z0-9_-])|[A-Za-z0-9]{32,250}(?![A-Za-z0-9_-]))/dg,
  },
  { id: 'huggingface_token', anyOf: ['hf_'], pattern: /\bhf_[A-Za-z]{34}(?![A-Za-z0-9])/dg },

  // Package registries and infrastructure.
  { id: 'npm_token', anyOf: ['npm_'], pattern: /\bnpm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/dg },
  { id: 'npm_token', anyOf: ['_authToken', '_auth'], accept: (t, s, e) => !isDummy(t.slice(s, e)), pattern: /:_auth(?:Token)?[ \t]*=[ \t]*["']?(?<secret>[^\s"'$][^\s"']{7,500})/dg },
  { id: 'pypi_token', anyOf: ['pypi-'], pattern: /\bpypi-Ag[A-Za-z0-9_-]{50,1000}(?![A-Za-z0-9_-])/dg },
  { id: 'digitalocean_token', anyOf: ['_v1_'], pattern: /\bdo[opr]_v1_[a-f0-9]{64}(?![A-Za-z0-9])/dg },
  { id: 'vault_token', anyOf: ['hvs.', 'hvb.'], pattern: /\bhv[sb]\.[A-Za-z0-9_-]{24,200}(?![A-Za-z0-9_-])/dg },
  { id: 'databricks_token', anyOf: ['dapi'], pattern: /\bdapi[a-f0-9]{32}(?:-[0-9])?(?![A-Za-z0-9])/dg },
  { id: 'age_secret_key', anyOf: ['AGE-SECRET-KEY-1'], pattern: /AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}/dg },

  // JSON Web Tokens: base64url header and payload, both JSON objects ("eyJ" is '{"').
  { id: 'jwt', anyOf: ['eyJ'], pattern: /\beyJ[A-Za-z0-9_-]{8,4000}\.eyJ[A-Za-z0-9_-]{8,8000}\.[A-Za-z0-9_-]{0,2000}/dg },

  // HTTP authorization headers.
  { id: 'bearer_token', anyOf: ['Bearer', 'bearer'], accept: (t, s, e, m) => randomish(t, s, e, m) && !isDummy(t.slice(s, e)), pattern: /\b[Bb]earer[ \t]+(?<secret>[A-Za-z0-9._~+/-]{20,2000}=*)(?![A-Za-z0-9._~+/=-])/dg },
  {
    id: 'basic_auth', anyOf: ['Basic'],
    // Only what decodes to "user:password".
    accept: (t, s, e) => /^[\x20-\x7e]+:[\x20-\x7e]+$/.test(Buffer.from(t.slice(s, e), 'base64').toString('latin1')),
    pattern: /\bBasic[ \t]+(?<secret>[A-Za-z0-9+/]{12,500}={0,2})(?![A-Za-z0-9+/=])/dg,
  },

  // Passwords in URLs: scheme://user:password@host.
  {
    id: 'url_password', anyOf: ['://'],
    accept: (t, s, e) => !isDummy(t.slice(s, e)),
    pattern: /\b[A-Za-z][A-Za-z0-9+.-]{1,30}:\/\/[^\s:@/'"`<>]{1,100}:(?<secret>[^\s@/'"`<>]{1,200})@(?=[A-Za-z0-9[])/dg,
  },

  // Name-based rules last: they see the provider placeholders and skip them.
  { id: 'password', pattern: QUOTED_ASSIGNMENT, accept: acceptQuotedAssignment, label: labelOfAssignment },
  { id: 'password', pattern: ENV_ASSIGNMENT, accept: acceptEnvAssignment, label: labelOfAssignment },
  { id: 'high_entropy', pattern: KEYLIKE_ASSIGNMENT, accept: acceptKeylike },
];

/** Rule ids that can appear in the counts (plus 'custom' for user patterns). */
export const SECRET_RULE_IDS: readonly string[] = [...new Set([...RULES.map((r) => r.id), 'secret', 'custom'])];

// ---------------------------------------------------------------------------------------------
// The pass

function spanOf(m: RegExpExecArray, group: string | number | null): [number, number] | null {
  const idx = m.indices;
  if (idx !== undefined && group !== null) {
    const span = typeof group === 'string' ? idx.groups?.[group] : idx[group];
    if (span !== undefined) return [span[0], span[1]];
  }
  return [m.index, m.index + m[0].length];
}

function replaceSpans(text: string, spans: Array<[number, number, string]>): string {
  const parts: string[] = [];
  let at = 0;
  for (const [s, e, id] of spans) {
    parts.push(text.slice(at, s), placeholder(id));
    at = e;
  }
  parts.push(text.slice(at));
  return parts.join('');
}

function runPattern(text: string, re: RegExp, pick: (m: RegExpExecArray) => [number, number] | null, rule: Omit<SecretRule, 'pattern'>): Array<[number, number, string]> {
  const spans: Array<[number, number, string]> = [];
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    const span = pick(m);
    const ok = span !== null && span[1] > span[0]
      && !text.slice(span[0], span[1]).includes(PLACEHOLDER_PREFIX)
      && (rule.accept === undefined || rule.accept(text, span[0], span[1], m));
    if (!ok) {
      // Rejected: look again from the next character, a shorter match may start inside this one.
      re.lastIndex = m.index + 1;
      continue;
    }
    spans.push([span![0], span![1], rule.label?.(m) ?? rule.id]);
  }
  return spans;
}

/** Compiles user-supplied patterns (a setting); throws with the offending pattern named. */
export function compileSecretPatterns(sources: readonly string[]): RegExp[] {
  return sources.map((src) => {
    try {
      return new RegExp(src, 'dg');
    } catch (err) {
      throw new Error(`invalid secret pattern ${JSON.stringify(src)}: ${(err as Error).message}`);
    }
  });
}

function withFlags(re: RegExp): RegExp {
  let flags = re.flags;
  if (!flags.includes('g')) flags += 'g';
  if (!flags.includes('d')) flags += 'd';
  return flags === re.flags ? re : new RegExp(re.source, flags);
}

/**
 * Replaces every detected secret with `<SECRET:rule>`. `extraPatterns` (e.g. a company's token
 * format) redact their first capture group if they have one, else the whole match, as 'custom'.
 */
export function redactSecrets(text: string, extraPatterns: readonly RegExp[] = []): Redaction {
  const counts: Record<string, number> = {};
  let out = text;
  const apply = (spans: Array<[number, number, string]>): void => {
    if (spans.length === 0) return;
    for (const [, , id] of spans) counts[id] = (counts[id] ?? 0) + 1;
    out = replaceSpans(out, spans);
  };
  for (const rule of RULES) {
    if (rule.anyOf !== undefined && !rule.anyOf.some((lit) => out.includes(lit))) continue;
    if (rule.find !== undefined) {
      apply(rule.find(out).map(([s, e]) => [s, e, rule.id] as [number, number, string]));
    } else if (rule.pattern !== undefined) {
      apply(runPattern(out, rule.pattern, (m) => spanOf(m, m.groups?.secret !== undefined ? 'secret' : null), rule));
    }
  }
  for (const extra of extraPatterns) {
    const re = withFlags(extra);
    apply(runPattern(out, re, (m) => spanOf(m, m.length > 1 && m[1] !== undefined ? 1 : null), { id: 'custom' }));
  }
  return { text: out, counts };
}

/**
 * Redacts a file's bytes: decoded as UTF-8 when valid, otherwise as latin1 (one char per byte), so
 * that every byte outside a redacted span comes back unchanged. Returns the input array itself when
 * nothing was found.
 */
export function redactSecretsInBytes(bytes: Uint8Array, extraPatterns: readonly RegExp[] = []): { bytes: Uint8Array; counts: Record<string, number> } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const encoding = isUtf8(buf) ? 'utf8' : 'latin1';
  const { text, counts } = redactSecrets(buf.toString(encoding), extraPatterns);
  if (Object.keys(counts).length === 0) return { bytes, counts };
  return { bytes: new Uint8Array(Buffer.from(text, encoding)), counts };
}
