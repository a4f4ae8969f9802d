// Secret redaction for the corpus: a model can regurgitate what it was trained on, so credentials
// are replaced before tokenizing. Rule families in the spirit of gitleaks / detect-secrets (our
// own patterns; the provider token formats were learned from gitleaks' rule list,
// github.com/gitleaks/gitleaks config/gitleaks.toml and cmd/generate/config/rules/*.go): provider
// token formats with a distinctive prefix, private-key blocks (PEM, OpenSSH, PGP, SSH2, PuTTY,
// whatever comment prefix or XML entity their lines carry), passwords in URLs, curl -u and
// connection strings, assignments to password/secret/token names (quoted, or unquoted as in YAML,
// INI, .properties and .env files), high-entropy values assigned to key-like names or to a
// provider's name, and last an entropy pass over the remaining quoted strings. Each secret becomes a
// typed placeholder such as `<SECRET:aws_access_key>` while the code around it (variable name,
// quotes, separators) stays, so the model still learns the shape of configuration code, never the
// value.
//
// Speed and safety: patterns lead with a literal, a keyword or a quote where they can (a format
// whose distinctive part is in the middle, "….atlasv1.…", matches that and checks what precedes
// with a lookbehind), every quantifier is bounded and no quantified group can match the same text
// two ways, so a scan is linear in the text (no catastrophic backtracking on a 10 MB single line
// or a run of a million 'a's). Rules whose literals do not occur in the text are skipped; the
// literals are found in one scan. A value longer than its pattern's bound (256 characters for the
// name rules) is not let through: the rule extends the match over the rest of the run of value
// characters (`extend`), computed once per run however many candidates start inside it, and
// acceptance tests read only the first VALUE_HEAD characters of a value.

import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';

export interface Redaction {
  text: string;
  /** Number of redactions per rule id (only rules that fired). */
  counts: Record<string, number>;
}

/** Tells whether a character (code unit) continues a value. */
type CharTest = (c: number) => boolean;

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
  label?: (m: RegExpExecArray, text: string, start: number, end: number) => string;
  /** The redacted span starts this many characters before the match (a lookbehind checked them). */
  lead?: number;
  /** When the value goes on past the pattern's bound: the characters that continue it. */
  extend?: (m: RegExpExecArray) => CharTest | undefined;
}

const PLACEHOLDER_PREFIX = '<SECRET:';

/**
 * Bump when a rule's behaviour changes in a way its pattern source does not show (the per-file
 * token cache is keyed by redactionFingerprint, which includes this, the patterns and the rules'
 * code).
 */
export const REDACTION_RULES_VERSION = 2;

/** Acceptance tests read at most this much of a value (a longer value is judged by its head). */
const VALUE_HEAD = 256;

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
const REFERENCE = /^(?:\$|%\(|%s|\{\{|<%|#\{|\{[A-Za-z_]|process\.env|os\.environ|env\(|ENV\[|%[A-Za-z_][A-Za-z0-9_]{0,60}%$)/;
/** Values that name a placeholder rather than being one (form labels, enum values, docs). */
const DUMMY_VALUES = new Set([
  'password', 'passwd', 'pass', 'pwd', 'secret', 'token', 'apikey', 'api_key', 'key', 'none', 'null', 'nil', 'undefined',
  'true', 'false', 'string', 'required', 'optional', 'hidden', 'text', 'changeme', 'redacted', 'example', 'placeholder',
  'your_password', 'yourpassword', 'your_token', 'your_api_key', 'your-api-key', 'xxx', 'xxxx', 'xxxxxx', 'dummy', 'test',
  // Conventional stand-ins in docs and tests ("user:foo@host", "hunter2") and type names ("password: str").
  'foo', 'bar', 'baz', 'qux', 'hunter2', 'str', 'bytes', 'secretstr', 'any', 'unknown', 'int', 'bool',
]);

/** A name mentioning what it names ("challengePassword", "auth-token-header"): a label, not a value. */
const NAMES_A_SECRET = /pass|pwd|secret|token|key|auth|credential/i;

function isDummy(value: string): boolean {
  if (value.includes(PLACEHOLDER_PREFIX) || REFERENCE.test(value)) return true;
  // Interpolation anywhere (`ghp_${suffix}`, "pre-{{ var }}"): an expression, not a literal.
  if (value.includes('${') || value.includes('{{')) return true;
  if (!/[A-Za-z0-9]/.test(value) || /^[xX]+$/.test(value)) return true; // masked: "********", ":****", "xxxx"
  if (/^<[^<>]{1,80}>$/.test(value)) return true; // "<your-password>"
  // "challengePassword", "[type=password]", "Enter your password": a label; a password of words
  // naming a secret without a digit is a fixture at best.
  if (NAMES_A_SECRET.test(value) && (isWordy(value) || !HAS_DIGIT.test(value))) return true;
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

/** The first VALUE_HEAD characters of the span: what acceptance tests read. */
function head(text: string, start: number, end: number): string {
  return text.slice(start, Math.min(end, start + VALUE_HEAD));
}

/** Character tests for extending values. */
const isBase64Char: CharTest = (c) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 61;
const isKeylikeChar: CharTest = (c) => isBase64Char(c) || c === 95 || c === 46 || c === 126 || c === 45; // _ . ~ -
const isNonSpace: CharTest = (c) => c !== 32 && c !== 9 && c !== 10 && c !== 13 && c !== 11 && c !== 12;
/** Inside a quoted string of each quote character: anything but that quote and a line break. */
const IN_QUOTES: Record<string, CharTest> = {
  '"': (c) => c !== 34 && c !== 10 && c !== 13,
  "'": (c) => c !== 39 && c !== 10 && c !== 13,
  '`': (c) => c !== 96 && c !== 10 && c !== 13,
};
/** Runs inside quotes skip backslash escapes ("\\"" does not close the string). */
const ESCAPE_AWARE = new Set<CharTest>(Object.values(IN_QUOTES));
const ENV_VALUE_STOP = new Set([...' \t\r\n\'"`$\\;&|<>(){}[]'].map((c) => c.charCodeAt(0)));
const isEnvValueChar: CharTest = (c) => !ENV_VALUE_STOP.has(c);
const INLINE_VALUE_STOP = new Set([...' \t\r\n\'"`;&|<>(){}[],'].map((c) => c.charCodeAt(0)));
const isInlineValueChar: CharTest = (c) => !INLINE_VALUE_STOP.has(c);
/** Outside a query string ("?password=…&"), "&" is part of the password. */
const isInlineValueOrAmp: CharTest = (c) => c === 38 || !INLINE_VALUE_STOP.has(c);

// ---------------------------------------------------------------------------------------------
// Private-key blocks: PEM (PKCS#1/#8, EC, OpenSSH, encrypted), PGP, SSH2 (RFC 4716 / ssh.com) and
// PuTTY (.ppk) keys, also inside string literals ("\n" escapes, concatenation), comments whose
// lines carry a prefix ("# ", " * ", "; ", "> ", "// ") and XML ("&#10;" entities). Once a BEGIN
// line with key material after it is seen, everything up to its END line is redacted.

interface KeyFamily {
  begin: RegExp;
  end: RegExp;
  /** The END marker itself is part of the secret (PuTTY's Private-MAC line). */
  endIsSecret: boolean;
}

const KEY_FAMILIES: KeyFamily[] = [
  { begin: /-----BEGIN[ A-Z0-9_-]{0,60}PRIVATE KEY(?: BLOCK)?-----/g, end: /-----END[ A-Z0-9_-]{0,60}PRIVATE KEY(?: BLOCK)?-----/g, endIsSecret: false },
  { begin: /---- BEGIN SSH2 (?:ENCRYPTED )?PRIVATE KEY ----/g, end: /---- END SSH2 (?:ENCRYPTED )?PRIVATE KEY ----/g, endIsSecret: false },
  { begin: /PuTTY-User-Key-File-[0-9]{1,2}:[ \t]{0,8}[A-Za-z0-9@.-]{1,64}/g, end: /Private-(?:MAC|Hash):[ \t]{0,8}[0-9a-fA-F]{1,128}/g, endIsSecret: true },
];

/**
 * A key block is at most this long between BEGIN and END (a 16384-bit RSA key is ~13 KB of PEM):
 * an END further on belongs to something else (parsing code), and the body ends where key
 * characters do.
 */
const KEY_BLOCK_LIMIT = 32_768;

/**
 * Characters of a key body when no END line is found: base64, PEM/PGP armor headers, whitespace,
 * "\n" escapes, string concatenation, line prefixes (# * >). "-----" ends the body.
 */
function isKeyBodyChar(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57)
    || c === 43 || c === 47 || c === 61 // + / =
    || c === 32 || c === 9 || c === 10 || c === 13
    || c === 92 || c === 34 || c === 39 // \ " '
    || c === 58 || c === 44 || c === 46 || c === 40 || c === 41 // : , . ( )
    || c === 35 || c === 42 || c === 62 // # * >
    || c === 45; // - (PEM headers "Proc-Type", "DEK-Info"); "-----" ends the body
}

/** Key material: a base64 run of 40+ characters with digits and both cases (not a code identifier). */
const KEY_MATERIAL = /[A-Za-z0-9+/]{40,}/g;

function hasKeyMaterial(text: string, start: number, end: number): boolean {
  KEY_MATERIAL.lastIndex = start;
  let m;
  while ((m = KEY_MATERIAL.exec(text)) !== null && m.index < end) {
    const run = m[0].slice(0, end - m.index);
    if (run.length >= 40 && HAS_DIGIT.test(run) && /[a-z]/.test(run) && /[A-Z]/.test(run)) return true;
  }
  return false;
}

/** Comment and quote markers that start the lines of a key block in a comment, a mail quote, an INI file. */
const LINE_PREFIX = /^(?:\/\/+|--|[#;>*%!]+)/;
const NEWLINE_ENTITY = /^&#(?:x0{0,2}[aAdD]|0{0,2}1[03]);/;
const NEWLINE_ENTITY_END = /&#(?:x0{0,2}[aAdD]|0{0,2}1[03]);$/;
const LINE_PREFIX_END = /[\s;](?:\/\/+|--|[#;>*%!]+)$/;

/** Moves the start of a key body past layout: whitespace, quotes, "\n" escapes, newline entities, line prefixes. */
function trimKeyStart(text: string, s: number, e: number): number {
  let lineStart = false;
  while (s < e) {
    const c = text[s]!;
    if (c === '\n' || c === '\r') {
      s++;
      lineStart = true;
    } else if (c === ' ' || c === '\t' || c === '"' || c === "'" || c === '`') {
      s++;
    } else if (c === '\\' && /[nrt]/.test(text[s + 1] ?? '')) {
      s += 2;
      lineStart = true;
    } else {
      const m = c === '&' ? NEWLINE_ENTITY.exec(text.slice(s, s + 10)) : lineStart ? LINE_PREFIX.exec(text.slice(s, s + 10)) : null;
      if (m === null) break;
      s += m[0].length;
      lineStart = c === '&';
    }
  }
  return s;
}

/** Moves the end of a key body back past the same layout (before the END line). */
function trimKeyEnd(text: string, s: number, e: number): number {
  while (e > s) {
    const c = text[e - 1]!;
    if (/[\s"'`]/.test(c)) {
      e--;
      continue;
    }
    if (e - 2 >= s && text[e - 2] === '\\' && /[nrt]/.test(c)) {
      e -= 2;
      continue;
    }
    const tail = text.slice(Math.max(s, e - 10), e);
    const m = NEWLINE_ENTITY_END.exec(tail) ?? LINE_PREFIX_END.exec(tail);
    if (m === null) break;
    // The prefix's own characters only, not the whitespace before it.
    e -= m[0].replace(/^[\s;]/, '').length;
  }
  return e;
}

function findPrivateKeys(text: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  for (const family of KEY_FAMILIES) {
    const begins: Array<[number, number]> = [];
    family.begin.lastIndex = 0;
    let m;
    while ((m = family.begin.exec(text)) !== null) begins.push([m.index, family.begin.lastIndex]);
    if (begins.length === 0) continue;
    const ends: Array<[number, number]> = [];
    family.end.lastIndex = begins[0]![1];
    while ((m = family.end.exec(text)) !== null) ends.push([m.index, family.end.lastIndex]);
    let ei = 0;
    let claimed = 0; // end of the last redacted block
    for (let bi = 0; bi < begins.length; bi++) {
      const [bStart, bEnd] = begins[bi]!;
      if (bStart < claimed) continue;
      const nextBegin = bi + 1 < begins.length ? begins[bi + 1]![0] : Infinity;
      while (ei < ends.length && ends[ei]![0] < bEnd) ei++;
      const end = ends[ei];
      let s: number;
      let e: number;
      let claimTo: number;
      if (end !== undefined && end[0] < nextBegin && end[0] - bEnd <= KEY_BLOCK_LIMIT) {
        s = trimKeyStart(text, bEnd, end[0]);
        e = family.endIsSecret ? end[1] : trimKeyEnd(text, s, end[0]);
        claimTo = end[1];
      } else {
        // No END line of its own: the key runs as far as key-body characters go.
        let stop = bEnd;
        const limit = Math.min(text.length, nextBegin);
        while (stop < limit && isKeyBodyChar(text.charCodeAt(stop)) && !text.startsWith('-----', stop)) stop++;
        s = trimKeyStart(text, bEnd, stop);
        e = trimKeyEnd(text, s, stop);
        claimTo = stop;
      }
      // A header in parsing code ("-----BEGIN PRIVATE KEY-----" as a string to search for) has no key material after it.
      if (e > s && hasKeyMaterial(text, s, e)) {
        spans.push([s, e]);
        claimed = claimTo;
      }
    }
  }
  // Families do not nest in practice; keep the spans sorted and disjoint anyway.
  spans.sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const sp of spans) {
    const last = out[out.length - 1];
    if (last !== undefined && sp[0] < last[1]) last[1] = Math.max(last[1], sp[1]);
    else out.push(sp);
  }
  return out;
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

// The value may run to VALUE_HEAD characters; a longer one has no closing quote within the bound
// and is extended to its quote by the rule's `extend`.
const QUOTED_ASSIGNMENT = new RegExp(
  `(?<name>${PASSWORD_WORDS}|${SECRET_WORDS})${ASSIGN}(?:[rbuf]{1,2}(?=["'\`]))?(?<q>["'\`])(?<secret>(?:(?!\\k<q>)[^\\n\\r\\\\]|\\\\[^\\n\\r]){1,${VALUE_HEAD}})(?<close>\\k<q>)?`,
  'gid',
);

/** Shell / env / compose style: UPPER_SNAKE name, `=` without spaces, unquoted value. */
const ENV_ASSIGNMENT = /(?<name>PASSWORD|PASSWD|PASS|PWD|SECRET|SECRET_KEY|TOKEN|API_KEY|APIKEY|ACCESS_KEY|PRIVATE_KEY)=(?<secret>[^\s'"`$\\;&|<>(){}[\]]{4,256})/dg;

/**
 * A password after `=` without spaces, in any case: connection strings ("Server=db;User
 * Id=sa;Password=…;"), .properties ("spring.datasource.password=…"), shell ("PGPASSWORD=…"),
 * query strings, CLI flags ("--password=…"). Code's keyword arguments ("password=pw)") end in a
 * character that no such value ends in.
 */
const INLINE_PASSWORD = /(?<name>PGPASSWORD|REDISCLI_AUTH|pass(?:word|wd|phrase)?|pwd)=(?=(?<secret>[^\s'"`;&|<>(){}[\],]{1,256}))\k<secret>/dgi;

/**
 * YAML / INI / TOML style: a line `password: value` or `db.password = value` whose unquoted value
 * is the rest of the line (up to a ` #` comment). YAML tags, anchors, block scalars and flow
 * collections (`!vault`, `&a`, `|`, `{`) are not values.
 */
const LINE_PASSWORD = new RegExp(
  `^[ \\t]{0,40}(?:-[ \\t]{1,4})?["']?(?<name>[A-Za-z0-9_.\\-]{0,60}?(?<kw>${PASSWORD_WORDS}))["']?[ \\t]{0,8}(?<op>:|=)[ \\t]{0,8}(?=(?<secret>[^\\s'"\`#!|>&*{[][^\\s]{0,${VALUE_HEAD - 1}}))\\k<secret>`,
  'gimd',
);

// The value is grabbed inside a lookahead, which is atomic in JS: a run of value characters that
// fails the checks after it is not retried at every shorter length ("key=key=key=…" stays linear).
const KEYLIKE_ASSIGNMENT = new RegExp(
  `(?<name>${KEYLIKE_WORDS})${ASSIGN}(?:[rbuf]{1,2}(?=["'\`]))?(?<q>["'\`]?)(?=(?<secret>[A-Za-z0-9+/=_.~-]{20,${VALUE_HEAD}}))\\k<secret>`,
  'gid',
);

/** `pwd` is also "print working directory": a path is not a password. */
const PATH_LIKE = /^(?:~|\.{0,2})\/[\w./-]*$/;

function isPasswordName(name: string): boolean {
  return /^(?:pass|pwd|pgpass|rediscli)/i.test(name) || /pass(?:word|wd|phrase)?$|pwd$/i.test(name);
}

/** "allPass", "firstPass": a bare `pass` may be a pass of an algorithm; its value must not be a plain word. */
function bareWordForPass(name: string, value: string): boolean {
  return /^pass$/i.test(name) && /^[A-Za-z_]+$/.test(value);
}

function nameIsSecretish(text: string, nameStart: number, nameEnd: number): boolean {
  if (!keywordStartsWord(text, nameStart)) return false;
  // Public keys and their ids are not secrets ("stripePublicKey", "public_key").
  return !/public|publishable/i.test(identifierEndingAt(text, nameEnd));
}

function acceptQuotedAssignment(text: string, start: number, end: number, m: RegExpExecArray): boolean {
  const name = m.groups!.name!;
  if (!nameIsSecretish(text, m.index, m.index + name.length)) return false;
  // Closed within the bound, or a long value that runs on to its closing quote.
  if (m.groups!.close === undefined && text[end] !== m.groups!.q) return false;
  const value = head(text, start, end);
  if (/\s/.test(value) || isDummy(value)) return false;
  if (isPasswordName(name)) {
    if (PATH_LIKE.test(value) || bareWordForPass(name, value)) return false;
    return value.length >= 4;
  }
  return value.length >= 8 && HAS_DIGIT.test(value) && HAS_LETTER.test(value);
}

function acceptEnvAssignment(text: string, start: number, end: number, m: RegExpExecArray): boolean {
  const prev = m.index > 0 ? text[m.index - 1]! : ' ';
  if (!/[^A-Za-z0-9]/.test(prev)) return false; // part of a longer word: "BYPASS=1"
  const value = head(text, start, end);
  if (isPasswordName(m.groups!.name!) && PATH_LIKE.test(value)) return false;
  return !isDummy(value) && !/^\d{1,3}$/.test(value);
}

const MEMBER_EXPRESSION = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$/;
const INLINE_TERMINATOR = /^(?:[\s;'"`&<]|$)/;

function acceptInlinePassword(text: string, start: number, end: number, m: RegExpExecArray): boolean {
  const name = m.groups!.name!;
  if (!/^(?:PGPASSWORD|REDISCLI_AUTH)$/i.test(name) && !nameIsSecretish(text, m.index, m.index + name.length)) return false;
  if (/^(?:PGPASSWORD|REDISCLI_AUTH)$/i.test(name) && m.index > 0 && /[A-Za-z0-9_]/.test(text[m.index - 1]!)) return false;
  // Ends where a connection string, a query or a shell word ends, not at "," or ")" (a call's argument).
  if (!INLINE_TERMINATOR.test(text.slice(end, end + 1))) return false;
  const value = head(text, start, end);
  if (isDummy(value) || /^\d{1,3}$/.test(value) || value.length < 3) return false;
  if (PATH_LIKE.test(value) || MEMBER_EXPRESSION.test(value) || bareWordForPass(name, value)) return false;
  return true;
}

/** A value that reads as code: calls, indexing, literals, statements. */
const CODE_LIKE = /[()[\]{}'"`]|[;,]$/;

function acceptLinePassword(text: string, start: number, end: number, m: RegExpExecArray): boolean {
  const kwStart = m.indices!.groups!.kw![0];
  if (!nameIsSecretish(text, kwStart, kwStart + m.groups!.kw!.length)) return false;
  if (/public/i.test(m.groups!.name!)) return false;
  // The value is the whole rest of the line, or is followed by a comment.
  if (!/^[ \t]{0,40}(?:[\r\n#]|$)/.test(text.slice(end, end + 41))) return false;
  const value = head(text, start, end);
  if (isDummy(value) || value.length < 4 || PATH_LIKE.test(value) || MEMBER_EXPRESSION.test(value) || CODE_LIKE.test(value)) return false;
  // A bare word ("password: string", "password = hashed", "pass: overEvery"): a variable or a type in code.
  return !/^[A-Za-z_$]+$/.test(value);
}

function acceptKeylike(text: string, start: number, end: number, m: RegExpExecArray): boolean {
  const value = head(text, start, end);
  // The cheap, most selective test first: most candidates are not random.
  if (!looksRandom(value) || !nameIsSecretish(text, m.index, m.index + m.groups!.name!.length)) return false;
  const q = m.groups!.q!;
  if (q !== '') {
    if (text[end] !== q) return false;
  } else {
    // Unquoted (YAML, INI, shell): the value must end the statement, not start an expression.
    const rest = /^[ \t]*(?:[\r\n;,#})\]]|$)/;
    if (!rest.test(text.slice(end, end + 64))) return false;
    // A member expression or a type ("self._lib.NID_x", "rsa.RSAPrivateKey") is code, not a literal.
    if (MEMBER_EXPRESSION.test(value)) return false;
  }
  // Base64 of a public key or a certificate (DER) under a key-like name ("serverKey") is not a secret.
  return !isDummy(value) && decodedKind(value) !== 'public-key';
}

const labelOfAssignment = (m: RegExpExecArray): string => (isPasswordName(m.groups!.name!) ? 'password' : 'secret');

// ---------------------------------------------------------------------------------------------
// Provider names: a value assigned to a name that mentions a provider ("SENTRY_AUTH_TOKEN",
// "herokuApiKey", "datadog_key") is that provider's credential when it looks random — the
// semi-generic rules of gitleaks (keyword, assignment, value), with one value test for all.

const PROVIDER_KEYWORDS: Array<[string, string]> = [
  ['atlassian|confluence|jira', 'atlassian_token'], ['azure[_-]?devops|vsts', 'azure_devops_token'], ['grafana', 'grafana_token'],
  ['sentry', 'sentry_token'], ['new[_-]?relic', 'newrelic_key'], ['discord', 'discord_token'], ['heroku', 'heroku_key'],
  ['linear', 'linear_key'], ['doppler', 'doppler_token'], ['planetscale|pscale', 'planetscale_token'], ['postman', 'postman_token'],
  ['terraform|tfe', 'terraform_token'], ['datadog|dd[_-]?api|dd[_-]?app', 'datadog_key'], ['okta', 'okta_token'],
  ['cloudflare|cf[_-]?api', 'cloudflare_key'], ['algolia', 'algolia_key'], ['netlify', 'netlify_token'], ['launchdarkly', 'launchdarkly_key'],
  ['mattermost', 'mattermost_token'], ['twitch', 'twitch_token'], ['twitter', 'twitter_token'], ['zendesk', 'zendesk_token'],
  ['confluent', 'confluent_key'], ['contentful', 'contentful_token'], ['codecov', 'codecov_token'], ['droneci', 'droneci_token'],
  ['travis', 'travis_token'], ['bitbucket', 'bitbucket_secret'], ['gitter', 'gitter_token'], ['fastly', 'fastly_token'],
  ['plaid', 'plaid_secret'], ['sendbird', 'sendbird_token'], ['intercom', 'intercom_token'], ['hubspot', 'hubspot_key'],
  ['dropbox', 'dropbox_token'], ['asana', 'asana_secret'], ['airtable', 'airtable_key'], ['coinbase', 'coinbase_token'],
  ['kraken', 'kraken_token'], ['kucoin', 'kucoin_key'], ['etsy', 'etsy_token'], ['flickr', 'flickr_token'], ['finnhub', 'finnhub_token'],
  ['freshbooks', 'freshbooks_token'], ['looker', 'looker_secret'], ['messagebird', 'messagebird_token'], ['rapidapi', 'rapidapi_key'],
  ['snyk', 'snyk_token'], ['sonar', 'sonar_token'], ['typeform', 'typeform_token'], ['yandex', 'yandex_key'],
  ['jfrog|artifactory', 'artifactory_key'], ['cohere', 'cohere_key'], ['mapbox', 'mapbox_token'], ['square', 'square_token'],
  ['mailchimp', 'mailchimp_key'], ['mailgun', 'mailgun_key'], ['sendgrid', 'sendgrid_key'], ['twilio', 'twilio_key'], ['stripe', 'stripe_key'],
  ['shopify', 'shopify_token'], ['slack', 'slack_token'], ['telegram', 'telegram_bot_token'], ['vercel', 'vercel_token'], ['supabase', 'supabase_key'],
];
const PROVIDER_MATCHERS = PROVIDER_KEYWORDS.map(([kw, id]) => [new RegExp(`^(?:${kw})$`, 'i'), id] as const);
const PROVIDER_IN_NAME = new RegExp(PROVIDER_KEYWORDS.map(([kw]) => kw).join('|'), 'gi');

// The scan looks for the assignment and its value, then reads the name before it: one pass over
// ":" and "=" is far cheaper than a case-insensitive alternation of sixty names at every position.
const TOKEN_ASSIGNMENT = /[:=][>=]{0,2}[ \t]{0,8}(?:[rbuf]{1,2}(?=["'`]))?(?<q>["'`]?)(?=(?<secret>[A-Za-z0-9_-]{16,200}))\k<secret>/dg;

/** The rest of the name says it is not a credential: ids, URLs, names, versions are configuration. */
const PROVIDER_NOT_SECRET = /(?:^|[_.-])(?:id|ids|url|uri|host|name|region|site|version|org|project|user|username|email|domain|env|dsn|index|app|release|environment|level|enabled|timeout|path|dir|file|type|mode)$|(?:Id|Ids|Url|Uri|Host|Name|Region|Site|Version|Org|Project|User|Email|Domain|Env|Dsn|Index|Release|Path|Dir|File|Type|Mode)$/;

/** The provider credential id named by the identifier before an assignment at `op`, or null. */
function providerOf(text: string, op: number): string | null {
  let i = op;
  while (i > 0 && op - i < 8 && (text[i - 1] === ' ' || text[i - 1] === '\t')) i--;
  const close = i;
  while (i > 0 && close - i < 2 && /["'\]]/.test(text[i - 1]!)) i--;
  const end = i;
  while (i > 0 && end - i < 80 && /[A-Za-z0-9_.-]/.test(text[i - 1]!)) i--;
  const ident = text.slice(i, end);
  if (ident === '' || /public|publishable/i.test(ident)) return null;
  PROVIDER_IN_NAME.lastIndex = 0;
  let m;
  while ((m = PROVIDER_IN_NAME.exec(ident)) !== null) {
    const rest = ident.slice(m.index);
    if (ident.length - m.index - m[0].length > 30 || !keywordStartsWord(text, i + m.index) || PROVIDER_NOT_SECRET.test(rest)) continue;
    for (const [re, id] of PROVIDER_MATCHERS) if (re.test(m[0])) return id;
  }
  return null;
}

function acceptProvider(text: string, start: number, end: number, m: RegExpExecArray): boolean {
  const q = m.groups!.q!;
  if (q !== '' ? text[end] !== q : !/^[ \t]*(?:[\r\n;,#})\]]|$)/.test(text.slice(end, end + 64))) return false;
  const value = head(text, start, end);
  if (isDummy(value) || !HAS_DIGIT.test(value) || !HAS_LETTER.test(value) || isWordy(value)) return false;
  if (shannonEntropy(value) < (/^[0-9a-fA-F-]+$/.test(value) ? 3.0 : 3.5)) return false;
  return providerOf(text, m.index) !== null;
}

// ---------------------------------------------------------------------------------------------
// Entropy pass (detect-secrets' HighEntropyString, our thresholds): a quoted string of 20 to 1,000
// base64/base64url characters with digits and both cases whose Shannon entropy is at least 4.5
// bits per character, unless it is something else that looks random:
// - hex strings (no mixed case): digests, git SHAs, test vectors, UUIDs — ubiquitous in code and
//   almost never a credential on their own; hex secrets are caught by the name rules instead;
// - words joined by separators, paths and URLs (isWordy), alphabets and tables ("ABCDEFGH…", runs
//   of consecutive characters), SRI/CSP hashes ("sha256-…");
// - base64 of text (a fixture "SGVsbG8s…") or of a known file format or public key (PNG, GIF,
//   JPEG, PDF, gzip, zip, zlib, wasm, fonts, DER certificates and SubjectPublicKeyInfo);
// - a string on a line whose code before it says it is public, a hash, an id or an example.
// A random 32+ character token has ~4.6–5 bits per character, so it is caught; shorter ones only by
// the name rules. A longer anonymous string is embedded data far more often than a key: it is left
// to the named rules (kubeconfig, key-like names), which follow a value of any length.

const QUOTED_STRING = /(?<q>["'`])(?=(?<secret>[A-Za-z0-9+/=_-]{20,1000}))\k<secret>\k<q>/dg;
const ENTROPY_THRESHOLD = 4.5;
const NOT_SECRET_NAME = /public|publishable|hash|digest|checksum|sha\d*|md5|integrity|fingerprint|etag|uuid|guid|example|sample|fixture|expected|mock|fake|dummy|alphabet|charset|chars|table|regex|pattern/i;

/** Four or more consecutive increments ("ABCDE", "vwxyz", "01234"): an alphabet or a table, not a key. */
function hasSequentialRun(v: string): boolean {
  let run = 0;
  for (let i = 1; i < v.length; i++) {
    run = v.charCodeAt(i) === v.charCodeAt(i - 1) + 1 ? run + 1 : 0;
    if (run >= 4) return true;
  }
  return false;
}

function decodeBase64Head(v: string): Buffer {
  const clean = v.replace(/=+$/, '');
  return Buffer.from(clean.slice(0, Math.min(clean.length, 344)), /[-_]/.test(clean) ? 'base64url' : 'base64');
}

/** What a base64 string decodes to, when it is not random bytes. */
function decodedKind(v: string): 'text' | 'file' | 'public-key' | 'private-key' | null {
  const b = decodeBase64Head(v);
  if (b.length < 12) return null;
  let printable = 0;
  for (const x of b) if ((x >= 32 && x < 127) || x === 9 || x === 10 || x === 13) printable++;
  if (printable / b.length >= 0.9) return 'text';
  const magic = (...bytes: number[]): boolean => bytes.every((x, i) => b[i] === x);
  if (magic(0x89, 0x50, 0x4e, 0x47) || magic(0x47, 0x49, 0x46, 0x38) || magic(0xff, 0xd8, 0xff) || magic(0x25, 0x50, 0x44, 0x46)
    || magic(0x1f, 0x8b) || magic(0x50, 0x4b, 0x03, 0x04) || magic(0x00, 0x61, 0x73, 0x6d) || magic(0x42, 0x5a, 0x68)
    || magic(0x77, 0x4f, 0x46) || magic(0x00, 0x01, 0x00, 0x00) || magic(0x4f, 0x54, 0x54, 0x4f) || magic(0x52, 0x49, 0x46, 0x46)
    || magic(0x00, 0x00, 0x01, 0x00) || (b[0] === 0x78 && [0x01, 0x5e, 0x9c, 0xda].includes(b[1]!))) return 'file';
  // DER: a SEQUENCE whose first element is a SEQUENCE (certificate, SubjectPublicKeyInfo) is public;
  // one that starts with an INTEGER (the version of PKCS#1, PKCS#8, SEC1) is a private key.
  if (b[0] === 0x30) {
    const len = b[1]!;
    const at = len < 0x80 ? 2 : 2 + (len & 0x7f);
    if (b[at] === 0x30) return 'public-key';
    if (b[at] === 0x02 && b[at + 1] === 0x01 && b[at + 2]! <= 3) return 'private-key';
  }
  return null;
}

/** The code before a string literal on its line (at most 120 characters): "const PUBLIC_KEY = ", "expect(sha256(x)).toBe(". */
function lineBefore(text: string, quoteAt: number): string {
  const before = text.slice(Math.max(0, quoteAt - 120), quoteAt);
  return before.slice(before.lastIndexOf('\n') + 1);
}

function acceptEntropyString(text: string, start: number, end: number, m: RegExpExecArray): boolean {
  const v = text.slice(start, end);
  if (!HAS_DIGIT.test(v) || !/[a-z]/.test(v) || !/[A-Z]/.test(v)) return false;
  if (/^(?:sha(?:1|224|256|384|512)|md5)-/i.test(v) || isWordy(v) || hasSequentialRun(v)) return false;
  if (shannonEntropy(v) < ENTROPY_THRESHOLD) return false;
  const kind = decodedKind(v);
  if (kind !== null && kind !== 'private-key') return false;
  // What the line says the string is: a public key, a hash, an example.
  return kind === 'private-key' || !NOT_SECRET_NAME.test(lineBefore(text, m.index));
}

// ---------------------------------------------------------------------------------------------
// The rules, in the order they run: specific formats first, so their placeholder names the
// provider; the name-based rules then skip values already redacted; the entropy pass last.

const randomish = (_text: string, start: number, end: number, m: RegExpExecArray): boolean => {
  const v = m.input.slice(start, end);
  return HAS_DIGIT.test(v) && HAS_LETTER.test(v);
};
/** Digits, lower and upper case, and some entropy: a prefix that a word could also start with ("EAAA…", "LTAI…"). */
const mixedRandom = (_text: string, start: number, end: number, m: RegExpExecArray): boolean => {
  const v = m.input.slice(start, end);
  return HAS_DIGIT.test(v) && /[a-z]/.test(v) && /[A-Z]/.test(v) && shannonEntropy(v) >= 3.5;
};

const RULES: SecretRule[] = [
  { id: 'private_key', find: findPrivateKeys, anyOf: ['PRIVATE KEY', 'PuTTY-User-Key-File-'] },

  // AWS: access key ids have a 4-letter type prefix and 16 base32 characters; Bedrock API keys.
  { id: 'aws_access_key', pattern: /\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])/dg },
  {
    id: 'aws_secret_key',
    pattern: /(?:secret[_-]?access[_-]?key|aws[_-]?secret(?:[_-]?access)?[_-]?key)["'\]]{0,2}[ \t]{0,8}(?::=|=>|[:=])[ \t]{0,8}["']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/dgi,
  },
  { id: 'aws_bedrock_key', anyOf: ['ABSK'], pattern: /\bABSK[A-Za-z0-9+/]{109,269}={0,2}(?![A-Za-z0-9+/=])/dg },

  // Google Cloud: API keys, service-account key ids (the key itself is a PEM block), OAuth client secrets.
  { id: 'gcp_api_key', anyOf: ['AIza'], pattern: /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/dg },
  { id: 'gcp_service_account', anyOf: ['private_key_id'], pattern: /"private_key_id"[ \t]*:[ \t]*"(?<secret>[0-9a-f]{40})"/dg },
  { id: 'gcp_oauth_secret', anyOf: ['GOCSPX-'], pattern: /\bGOCSPX-[A-Za-z0-9_-]{28}(?![A-Za-z0-9_-])/dg },

  // Azure: storage/service-bus account keys in connection strings, SAS signatures, AAD client
  // secrets, DevOps personal access tokens (84 characters with the "JQQJ" and "AZDO" signatures).
  { id: 'azure_storage_key', anyOf: ['AccountKey=', 'SharedAccessKey='], pattern: /\b(?:AccountKey|SharedAccessKey)=(?<secret>[A-Za-z0-9+/]{40,100}={0,2})/dg },
  { id: 'azure_sas', anyOf: ['sig='], pattern: /[?&;]sig=(?<secret>[A-Za-z0-9%+/]{40,200}(?:%3D|=){0,2})/dgi },
  { id: 'azure_client_secret', anyOf: ['Q~'], pattern: /(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])/dg },
  { id: 'azure_devops_token', anyOf: ['AZDO'], lead: 52, pattern: /JQQJ(?<=(?<![A-Za-z0-9])[A-Za-z0-9]{52}JQQJ)[A-Za-z0-9]{20}AZDO[A-Za-z0-9]{4}(?![A-Za-z0-9])/dg },

  // Code hosts and their tools.
  { id: 'github_token', anyOf: ['gh', 'github_pat_'], pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])/dg },
  { id: 'gitlab_token', anyOf: ['gl', 'GR1348941'], pattern: /\b(?:gl(?:pat|dt|rt|ptt|cbt|soat|ft|imt|agent|oas|ffct)-[A-Za-z0-9_.-]{20,300}|GR1348941[A-Za-z0-9_-]{20,255})(?![A-Za-z0-9_.-])/dg },
  { id: 'gitlab_token', anyOf: ['_gitlab_session='], pattern: /_gitlab_session=(?<secret>[0-9a-z]{32})(?![0-9a-z])/dg },
  { id: 'atlassian_token', anyOf: ['ATATT3', 'ATCTT3'], pattern: /\bAT[AC]TT3[A-Za-z0-9_=-]{186}(?![A-Za-z0-9_=-])/dg },
  { id: 'sourcegraph_token', anyOf: ['sgp_'], pattern: /\bsgp_(?:(?:[a-fA-F0-9]{16}|local)_)?[a-fA-F0-9]{40}(?![A-Za-z0-9])/dg },
  { id: 'sonar_token', anyOf: ['sqp_', 'squ_', 'sqa_'], accept: randomish, pattern: /\bsq[pua]_[a-fA-F0-9]{40}(?![A-Za-z0-9])/dg },
  { id: 'artifactory_key', anyOf: ['AKCp'], pattern: /\bAKCp[A-Za-z0-9]{69}(?![A-Za-z0-9])/dg },
  { id: 'clojars_token', anyOf: ['CLOJARS_'], pattern: /\bCLOJARS_[A-Za-z0-9]{60}(?![A-Za-z0-9])/dg },
  { id: 'harness_token', anyOf: ['pat.', 'sat.'], pattern: /\b(?:pat|sat)\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}(?![A-Za-z0-9])/dg },
  { id: 'octopus_key', anyOf: ['API-'], accept: randomish, pattern: /\bAPI-[A-Z0-9]{26}(?![A-Za-z0-9])/dg },

  // Chat and payments.
  { id: 'slack_token', anyOf: ['xox', 'xapp-'], pattern: /\b(?:xox[abposre]-[A-Za-z0-9-]{10,250}|xapp-[0-9]-[A-Za-z0-9-]{10,250})(?![A-Za-z0-9-])/dg },
  { id: 'slack_webhook', anyOf: ['hooks.slack.com'], pattern: /hooks\.slack\.com\/(?:services|workflows|triggers)\/(?<secret>[A-Za-z0-9+/_-]{20,200})/dg },
  { id: 'discord_webhook', anyOf: ['discord'], pattern: /discord(?:app)?\.com\/api\/webhooks\/(?<secret>[0-9]{10,25}\/[A-Za-z0-9_-]{40,100})/dg },
  {
    // Bot tokens: base64 of the bot's numeric id, a timestamp, an HMAC.
    id: 'discord_token',
    accept: (t, s) => /^[0-9]{15,21}$/.test(Buffer.from(t.slice(s, t.indexOf('.', s)), 'base64').toString('latin1')),
    pattern: /\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}(?![A-Za-z0-9_-])/dg,
  },
  { id: 'telegram_bot_token', anyOf: [':AA'], pattern: /\b[0-9]{8,10}:AA[A-Za-z0-9_-]{33}(?![A-Za-z0-9_-])/dg },
  { id: 'teams_webhook', anyOf: ['webhook.office.com'], pattern: /webhook\.office\.com\/webhookb2\/(?<secret>[A-Za-z0-9@/-]{60,300})/dg },
  { id: 'stripe_key', anyOf: ['k_live_', 'k_test_', 'k_prod_'], lead: 1, pattern: /k_(?:live|test|prod)_(?<=\b[rs]k_(?:live|test|prod)_)[A-Za-z0-9]{10,247}(?![A-Za-z0-9])/dg },
  { id: 'stripe_key', anyOf: ['whsec_'], pattern: /\bwhsec_[A-Za-z0-9]{24,100}(?![A-Za-z0-9])/dg },
  { id: 'square_token', anyOf: ['sq0atp-', 'sq0csp-'], pattern: /\bsq0(?:atp|csp)-[A-Za-z0-9_-]{22,60}(?![A-Za-z0-9_-])/dg },
  { id: 'square_token', anyOf: ['EAAA'], accept: mixedRandom, pattern: /\bEAAA[A-Za-z0-9_-]{22,60}(?![A-Za-z0-9_-])/dg },
  { id: 'twilio_key', anyOf: ['SK', 'AC'], pattern: /\b(?:SK|AC)[0-9a-f]{32}(?![A-Za-z0-9])/dg },
  { id: 'sendgrid_key', anyOf: ['SG.'], pattern: /\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/dg },
  { id: 'sendinblue_key', anyOf: ['xkeysib-', 'xsmtpsib-'], pattern: /\bx(?:keysib|smtpsib)-[a-f0-9]{64}-[A-Za-z0-9]{16}(?![A-Za-z0-9])/dg },
  { id: 'mailgun_key', anyOf: ['key-'], pattern: /\bkey-[0-9a-f]{32}(?![A-Za-z0-9])/dg },
  { id: 'mailchimp_key', anyOf: ['-us'], lead: 32, pattern: /-us(?<=\b[0-9a-f]{32}-us)[0-9]{1,2}(?![A-Za-z0-9])/dg },
  { id: 'shopify_token', anyOf: ['shp'], pattern: /\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![A-Za-z0-9])/dg },
  { id: 'postman_token', anyOf: ['PMAK-'], pattern: /\bPMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}(?![A-Za-z0-9])/dg },
  { id: 'shippo_token', anyOf: ['shippo_'], pattern: /\bshippo_(?:live|test)_[a-fA-F0-9]{40}(?![A-Za-z0-9])/dg },
  { id: 'easypost_token', anyOf: ['EZAK', 'EZTK'], pattern: /\bEZ[AT]K[A-Za-z0-9]{54}(?![A-Za-z0-9])/dg },
  { id: 'flutterwave_key', anyOf: ['FLWSECK'], pattern: /\bFLWSECK(?:_TEST)?-[a-hA-H0-9]{12,32}(?:-X)?(?![A-Za-z0-9])/dg },
  { id: 'duffel_token', anyOf: ['duffel_'], pattern: /\bduffel_(?:test|live)_[A-Za-z0-9_=-]{43}(?![A-Za-z0-9_=-])/dg },
  { id: 'facebook_token', anyOf: ['EAAC', 'EAAM'], accept: mixedRandom, pattern: /\bEAA[CM][A-Za-z0-9]{100,1000}(?![A-Za-z0-9])/dg },

  // AI providers: Anthropic before OpenAI ("sk-ant-…" would otherwise read as an OpenAI key).
  { id: 'anthropic_key', anyOf: ['sk-ant-'], pattern: /\bsk-ant-[A-Za-z0-9_-]{20,250}(?![A-Za-z0-9_-])/dg },
  {
    id: 'openai_key', anyOf: ['sk-'], accept: randomish,
    pattern: /\bsk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,250}(?![A-Za-z0-9_-])|[A-Za-z0-9]{32,250}(?![A-Za-z0-9_-]))/dg,
  },
  { id: 'huggingface_token', anyOf: ['hf_', 'api_org_'], pattern: /\b(?:hf|api_org)_[A-Za-z]{34}(?![A-Za-z0-9])/dg },
  { id: 'perplexity_key', anyOf: ['pplx-'], pattern: /\bpplx-[A-Za-z0-9]{48}(?![A-Za-z0-9])/dg },

  // Package registries.
  { id: 'npm_token', anyOf: ['npm_'], pattern: /\bnpm_[A-Za-z0-9]{36}(?![A-Za-z0-9])/dg },
  { id: 'npm_token', anyOf: ['_authToken', '_auth'], accept: (t, s, e) => !isDummy(head(t, s, e)), pattern: /:_auth(?:Token)?[ \t]*=[ \t]*["']?(?<secret>[^\s"'$][^\s"']{7,500})/dg },
  { id: 'pypi_token', anyOf: ['pypi-'], pattern: /\bpypi-Ag[A-Za-z0-9_-]{50,1000}(?![A-Za-z0-9_-])/dg },
  { id: 'rubygems_token', anyOf: ['rubygems_'], pattern: /\brubygems_[a-f0-9]{48}(?![A-Za-z0-9])/dg },
  { id: 'readme_token', anyOf: ['rdme_'], pattern: /\brdme_[a-z0-9]{70}(?![A-Za-z0-9])/dg },

  // Infrastructure, observability and secret managers.
  { id: 'digitalocean_token', anyOf: ['_v1_'], pattern: /\bdo[opr]_v1_[a-f0-9]{64}(?![A-Za-z0-9])/dg },
  { id: 'vault_token', anyOf: ['hvs.', 'hvb.'], pattern: /\bhv[sb]\.[A-Za-z0-9_-]{24,300}(?![A-Za-z0-9_-])/dg },
  { id: 'terraform_token', anyOf: ['.atlasv1.'], lead: 14, pattern: /\.atlasv1\.(?<=(?<![A-Za-z0-9])[A-Za-z0-9]{14}\.atlasv1\.)[A-Za-z0-9_=-]{60,70}(?![A-Za-z0-9_=-])/dg },
  { id: 'pulumi_token', anyOf: ['pul-'], pattern: /\bpul-[a-f0-9]{40}(?![A-Za-z0-9])/dg },
  { id: 'databricks_token', anyOf: ['dapi'], pattern: /\bdapi[a-f0-9]{32}(?:-[0-9])?(?![A-Za-z0-9])/dg },
  { id: 'age_secret_key', anyOf: ['AGE-SECRET-KEY-1'], pattern: /AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}/dg },
  { id: 'onepassword_token', anyOf: ['ops_eyJ'], pattern: /\bops_eyJ[A-Za-z0-9+/]{250,5000}={0,3}(?![A-Za-z0-9+/=])/dg },
  { id: 'onepassword_secret_key', anyOf: ['A3-'], pattern: /\bA3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}(?![A-Za-z0-9-])/dg },
  { id: 'doppler_token', anyOf: ['dp.'], pattern: /\bdp\.(?:pt|sa|ct|scim|audit|st(?:\.[a-z0-9_-]{1,40})?)\.[A-Za-z0-9]{40,44}(?![A-Za-z0-9])/dg },
  { id: 'planetscale_token', anyOf: ['pscale_'], pattern: /\bpscale_(?:tkn|oauth|pw)_[A-Za-z0-9_=.-]{32,64}(?![A-Za-z0-9_=.-])/dg },
  { id: 'heroku_key', anyOf: ['HRKU-'], pattern: /\bHRKU-AA[0-9A-Za-z_-]{58}(?![0-9A-Za-z_-])/dg },
  { id: 'linear_key', anyOf: ['lin_api_'], pattern: /\blin_api_[A-Za-z0-9]{40}(?![A-Za-z0-9])/dg },
  { id: 'grafana_token', anyOf: ['eyJrIjoi', 'glc_', 'glsa_'], pattern: /\b(?:eyJrIjoi[A-Za-z0-9]{70,400}={0,3}|glc_[A-Za-z0-9+/]{32,400}={0,3}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})(?![A-Za-z0-9+/=_])/dg },
  { id: 'sentry_token', anyOf: ['sntrys_', 'sntryu_'], pattern: /\b(?:sntrys_eyJ[A-Za-z0-9+/=]{20,1000}_[A-Za-z0-9+/]{43}|sntryu_[a-f0-9]{64})(?![A-Za-z0-9+/=_])/dg },
  { id: 'newrelic_key', anyOf: ['NRAK-', 'NRII-', 'NRJS-'], pattern: /\b(?:NRAK-[A-Za-z0-9]{27}|NRII-[A-Za-z0-9-]{32}|NRJS-[a-f0-9]{19})(?![A-Za-z0-9-])/dg },
  { id: 'dynatrace_token', anyOf: ['dt0c01.'], pattern: /\bdt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}(?![A-Za-z0-9])/dg },
  { id: 'flyio_token', anyOf: ['fo1_', 'fm1', 'fm2_'], pattern: /\b(?:fo1_[A-Za-z0-9_-]{43}|fm1[ar]_[A-Za-z0-9+/]{100,2000}={0,3}|fm2_[A-Za-z0-9+/]{100,2000}={0,3})(?![A-Za-z0-9+/=_-])/dg },
  { id: 'infracost_token', anyOf: ['ico-'], pattern: /\bico-[A-Za-z0-9]{32}(?![A-Za-z0-9])/dg },
  { id: 'prefect_token', anyOf: ['pnu_'], pattern: /\bpnu_[A-Za-z0-9]{36}(?![A-Za-z0-9])/dg },
  { id: 'scalingo_token', anyOf: ['tk-us-'], pattern: /\btk-us-[A-Za-z0-9_-]{48}(?![A-Za-z0-9_-])/dg },
  { id: 'openshift_token', anyOf: ['sha256~'], pattern: /\bsha256~[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/dg },
  { id: 'cloudflare_key', anyOf: ['v1.0-'], pattern: /\bv1\.0-[a-f0-9]{24}-[a-f0-9]{146}(?![A-Za-z0-9])/dg },
  { id: 'alibaba_key', anyOf: ['LTAI'], accept: mixedRandom, pattern: /\bLTAI[A-Za-z0-9]{20}(?![A-Za-z0-9])/dg },
  { id: 'yandex_key', anyOf: ['AQVN'], accept: mixedRandom, pattern: /\bAQVN[A-Za-z0-9_-]{35,38}(?![A-Za-z0-9_-])/dg },
  { id: 'adobe_secret', anyOf: ['p8e-'], pattern: /\bp8e-[A-Za-z0-9]{32}(?![A-Za-z0-9])/dg },
  { id: 'airtable_key', anyOf: ['pat'], pattern: /\bpat[A-Za-z0-9]{14}\.[a-f0-9]{64}(?![A-Za-z0-9])/dg },
  { id: 'notion_token', anyOf: ['ntn_'], pattern: /\bntn_[0-9]{11}[A-Za-z0-9]{35}(?![A-Za-z0-9])/dg },
  { id: 'notion_token', anyOf: ['secret_'], accept: mixedRandom, pattern: /\bsecret_[A-Za-z0-9]{43}(?![A-Za-z0-9])/dg },
  { id: 'mapbox_token', anyOf: ['sk.eyJ'], pattern: /\bsk\.eyJ[A-Za-z0-9_-]{20,300}\.[A-Za-z0-9_-]{20,100}(?![A-Za-z0-9_-])/dg },
  { id: 'typeform_token', anyOf: ['tfp_'], pattern: /\btfp_[A-Za-z0-9_.=-]{59}(?![A-Za-z0-9_.=-])/dg },
  { id: 'frameio_token', anyOf: ['fio-u-'], pattern: /\bfio-u-[A-Za-z0-9_=-]{64}(?![A-Za-z0-9_=-])/dg },

  // JSON Web Tokens: base64url header and payload, both JSON objects ("eyJ" is '{"').
  { id: 'jwt', anyOf: ['eyJ'], pattern: /\beyJ[A-Za-z0-9_-]{8,4000}\.eyJ[A-Za-z0-9_-]{8,8000}\.[A-Za-z0-9_-]{0,2000}/dg },

  // kubeconfig: the client's key and certificate, base64 of PEM (kilobytes: extended past the bound).
  {
    id: 'kubeconfig_credential', anyOf: ['client-key-data', 'client-certificate-data'], extend: () => isBase64Char,
    pattern: /\b(?:client-key-data|client-certificate-data)["']?[ \t]{0,8}:[ \t]{0,8}["']?(?=(?<secret>[A-Za-z0-9+/=]{20,256}))\k<secret>/dg,
  },

  // HTTP authorization: headers, curl's -u/--user.
  { id: 'bearer_token', anyOf: ['Bearer', 'bearer'], accept: (t, s, e, m) => randomish(t, s, e, m) && !isDummy(head(t, s, e)), pattern: /\b[Bb]earer[ \t]+(?<secret>[A-Za-z0-9._~+/-]{20,2000}=*)(?![A-Za-z0-9._~+/=-])/dg },
  {
    id: 'basic_auth', anyOf: ['Basic'],
    // Only what decodes to "user:password".
    accept: (t, s, e) => /^[\x20-\x7e]+:[\x20-\x7e]+$/.test(Buffer.from(t.slice(s, e), 'base64').toString('latin1')),
    pattern: /\bBasic[ \t]+(?<secret>[A-Za-z0-9+/]{12,500}={0,2})(?![A-Za-z0-9+/=])/dg,
  },
  {
    // `curl … -u user:password` on one line or continued with backslashes; the user stays.
    id: 'curl_auth', anyOf: ['curl'],
    accept: (t, s, e) => !isDummy(head(t, s, e)),
    pattern: /\bcurl\b(?:[^\n\\]|\\[^\n]|\\\r?\n){0,500}?[ \t](?:-u|--user)(?:=|[ \t]{1,5})(?<q>["']?)[^\s:"']{0,100}:(?<secret>[^\s"']{1,200})\k<q>/dg,
  },

  // Passwords in URLs: scheme://user:password@host, the user possibly empty (redis://:password@host),
  // the password possibly with "/" or "@" (up to the last "@" before the host).
  {
    id: 'url_password', anyOf: ['://'],
    // A port and a path ("http://host:8080/x@y") is not a password.
    accept: (t, s, e) => !isDummy(head(t, s, e)) && !/^[0-9]{1,5}(?:\/|$)/.test(t.slice(s, e)),
    // (The "://" first and the scheme in a lookbehind: the scan looks for a literal, not at every word.)
    pattern: /:\/\/(?<=\b[A-Za-z][A-Za-z0-9+.-]{1,30}:\/\/)[^\s:@/'"`<>]{0,100}:(?<secret>[^\s'"`<>?#]{1,200})@(?=[A-Za-z0-9[])/dg,
  },

  // A provider's name with a random value.
  { id: 'provider', pattern: TOKEN_ASSIGNMENT, accept: acceptProvider, label: (m, text) => providerOf(text, m.index) ?? 'secret' },

  // Name-based rules: they see the provider placeholders and skip them.
  { id: 'password', pattern: ENV_ASSIGNMENT, accept: acceptEnvAssignment, label: labelOfAssignment, extend: () => isEnvValueChar },
  { id: 'password', pattern: QUOTED_ASSIGNMENT, accept: acceptQuotedAssignment, label: labelOfAssignment, extend: (m) => (m.groups!.close === undefined ? IN_QUOTES[m.groups!.q!] : undefined) },
  { id: 'password', pattern: LINE_PASSWORD, accept: acceptLinePassword, extend: () => isNonSpace },
  { id: 'password', pattern: INLINE_PASSWORD, accept: acceptInlinePassword, extend: (m) => (/[?&]/.test(m.input[m.index - 1] ?? '') ? isInlineValueChar : isInlineValueOrAmp) },
  { id: 'high_entropy', pattern: KEYLIKE_ASSIGNMENT, accept: acceptKeylike, extend: () => isKeylikeChar },

  // Quoted strings that look random, whatever their name.
  {
    id: 'high_entropy_string', pattern: QUOTED_STRING, accept: acceptEntropyString,
    label: (_m, text, s, e) => (decodedKind(text.slice(s, e)) === 'private-key' ? 'private_key' : 'high_entropy_string'),
  },
];

/** Rule ids that can appear in the counts (plus 'custom' for user patterns). */
export const SECRET_RULE_IDS: readonly string[] = [...new Set([
  ...RULES.map((r) => r.id).filter((id) => id !== 'provider'), 'secret', ...PROVIDER_KEYWORDS.map(([, id]) => id), 'custom',
])];

/**
 * A fingerprint of what redaction does: the rules (ids, pattern sources and flags, their code), the
 * version constant and the user's extra patterns. Cached redacted text is valid only under the same
 * fingerprint.
 */
export function redactionFingerprint(extraPatterns: readonly string[] = []): string {
  const h = createHash('sha256');
  h.update(`v${REDACTION_RULES_VERSION}\n`);
  for (const r of RULES) {
    h.update(JSON.stringify([r.id, r.pattern?.source, r.pattern?.flags, r.anyOf, r.lead, String(r.find ?? ''), String(r.accept ?? ''), String(r.label ?? ''), String(r.extend ?? '')]));
  }
  for (const f of KEY_FAMILIES) h.update(JSON.stringify([f.begin.source, f.end.source, f.endIsSecret]));
  h.update(JSON.stringify(['extra', ...extraPatterns]));
  return h.digest('hex');
}

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

/** [start, end) of every placeholder in the text, in order. */
function placeholderRanges(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let i = text.indexOf(PLACEHOLDER_PREFIX);
  while (i >= 0) {
    const close = text.indexOf('>', i);
    const end = close < 0 ? text.length : close + 1;
    out.push([i, end]);
    i = text.indexOf(PLACEHOLDER_PREFIX, end);
  }
  return out;
}

/** True when [s, e) overlaps one of the (sorted, disjoint) ranges. */
function overlapsAny(ranges: Array<[number, number]>, s: number, e: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  let last = -1; // the last range starting before e
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid]![0] < e) {
      last = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return last >= 0 && ranges[last]![1] > s;
}

function runPattern(text: string, placeholders: Array<[number, number]>, re: RegExp, pick: (m: RegExpExecArray) => [number, number] | null, rule: Omit<SecretRule, 'pattern'>): Array<[number, number, string]> {
  const spans: Array<[number, number, string]> = [];
  // Where the run of value characters that contains a position ends, per character test: computed
  // once per run, so candidates starting inside one long run do not each scan it again.
  const runs = new Map<CharTest, { from: number; end: number }>();
  const runEnd = (test: CharTest, p: number): number => {
    const known = runs.get(test);
    if (known !== undefined && known.from <= p && p <= known.end) return known.end;
    let e = p;
    const escapes = ESCAPE_AWARE.has(test);
    while (e < text.length && test(text.charCodeAt(e))) e += escapes && text.charCodeAt(e) === 92 ? 2 : 1;
    e = Math.min(e, text.length);
    runs.set(test, { from: p, end: e });
    return e;
  };
  let claimed = 0;
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    let span = pick(m);
    if (span !== null && rule.lead !== undefined) span = [span[0] - rule.lead, span[1]];
    if (span !== null && rule.extend !== undefined && span[1] < text.length) {
      const test = rule.extend(m);
      if (test !== undefined && test(text.charCodeAt(span[1]))) span = [span[0], runEnd(test, span[1])];
    }
    const ok = span !== null && span[1] > span[0] && span[0] >= claimed
      && !overlapsAny(placeholders, span[0], span[1])
      // Documentation's stand-ins ("AKIAIOSFODNN7EXAMPLE", "sk_test_example…") for the built-in rules.
      && (rule.id === 'custom' || !/example/i.test(head(text, span[0], span[1])))
      && (rule.accept === undefined || rule.accept(text, span[0], span[1], m));
    if (!ok) {
      // Rejected: look again from the next character, a shorter match may start inside this one.
      re.lastIndex = m.index + 1;
      continue;
    }
    spans.push([span![0], span![1], rule.label?.(m, text, span![0], span![1]) ?? rule.id]);
    claimed = span![1];
    re.lastIndex = Math.max(re.lastIndex, span![1]);
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
  let placeholders = placeholderRanges(out);
  const apply = (spans: Array<[number, number, string]>): void => {
    if (spans.length === 0) return;
    for (const [, , id] of spans) counts[id] = (counts[id] ?? 0) + 1;
    out = replaceSpans(out, spans);
    placeholders = placeholderRanges(out);
  };
  // The pre-filter's literals, found in one pass over the input. Redaction cannot create one: a
  // placeholder is "<SECRET:" and a lower-case id, and no literal contains "<", ">" or such an id
  // across its edges, so a literal absent from the input is absent from every later text.
  const present = presentLiterals(text);
  for (const rule of RULES) {
    if (rule.anyOf !== undefined && !rule.anyOf.some((lit) => present.has(lit))) continue;
    if (rule.find !== undefined) {
      apply(rule.find(out).map(([s, e]) => [s, e, rule.id] as [number, number, string]));
    } else if (rule.pattern !== undefined) {
      apply(runPattern(out, placeholders, rule.pattern, (m) => spanOf(m, m.groups?.secret !== undefined ? 'secret' : null), rule));
    }
  }
  for (const extra of extraPatterns) {
    const re = withFlags(extra);
    apply(runPattern(out, placeholders, re, (m) => spanOf(m, m.length > 1 && m[1] !== undefined ? 1 : null), { id: 'custom' }));
  }
  return { text: out, counts };
}

/** Every pre-filter literal, longest first, as one alternation: one scan instead of an `includes` per literal. */
const LITERALS = [...new Set(RULES.flatMap((r) => r.anyOf ?? []))].sort((a, b) => b.length - a.length);
const LITERAL_SCAN = new RegExp(LITERALS.map((l) => l.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
/** The literals that a matched literal starts with (the alternation reports only the longest at a position). */
const LITERAL_PREFIXES = new Map(LITERALS.map((l) => [l, LITERALS.filter((p) => l.startsWith(p))]));

function presentLiterals(text: string): Set<string> {
  const found = new Set<string>();
  LITERAL_SCAN.lastIndex = 0;
  let m;
  while (found.size < LITERALS.length && (m = LITERAL_SCAN.exec(text)) !== null) {
    if (!found.has(m[0])) for (const p of LITERAL_PREFIXES.get(m[0])!) found.add(p);
    LITERAL_SCAN.lastIndex = m.index + 1; // overlapping occurrences: "xapp-" holds "app-"
  }
  return found;
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
