// Secret redaction, round 2: key blocks whatever their lines carry (comment prefixes, XML
// entities, SSH2 and PuTTY formats), unquoted passwords (YAML, INI, .properties, connection
// strings, PGPASSWORD), URL passwords with an empty user or "/" and "@", curl -u, kubeconfig
// credentials, values longer than the patterns' bounds, the token families of gitleaks' rule list,
// the entropy pass over quoted strings (and what it must leave alone), linear time on hostile input
// for the new rules, and the fingerprint that keys the token cache. Fake secrets are generated at
// run time from a seeded RNG, so this file holds no token-shaped literals for secret scanners.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/ml/rng';
import { redactionFingerprint, redactSecrets } from '../src/corpus/secrets';

const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
const ALNUM = UPPER + LOWER + DIGITS;
const BASE64 = ALNUM + '+/';
const BASE64URL = ALNUM + '-_';
const HEX = '0123456789abcdef';
const MB = 1_000_000;

const rng = new Rng(14);
/** Random string over `alphabet`, with a digit, a lower- and an upper-case letter when the alphabet has them. */
function rnd(alphabet: string, n: number): string {
  for (;;) {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[rng.nextU32() % alphabet.length];
    const ok = (!/[0-9]/.test(alphabet) || /[0-9]/.test(s)) && (!/[a-z]/.test(alphabet) || /[a-z]/.test(s)) && (!/[A-Z]/.test(alphabet) || /[A-Z]/.test(s));
    if (ok) return s;
  }
}
const randomBytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => rng.nextU32() & 255));
const uuid = (): string => [8, 4, 4, 4, 12].map((n) => rnd(HEX, n)).join('-');

/** Every 10-character piece of the secret (and each of its lines): a partial leak fails too. */
function assertNoLeak(out: string, secret: string, what: string): void {
  for (const part of secret.split(/\n|&#10;|\\n/)) {
    for (let i = 0; i + 10 <= part.length; i += 3) assert.ok(!out.includes(part.slice(i, i + 10)), `${what}: piece ${part.slice(i, i + 10)} leaked in ${JSON.stringify(out.slice(0, 300))}`);
  }
}

/** Redacts before + secret + after and checks the result is before + placeholder + after. */
function check(rule: string, before: string, secret: string, after = '', exact = true): void {
  const text = before + secret + after;
  const r = redactSecrets(text);
  assert.deepEqual(r.counts, { [rule]: 1 }, `${rule}: ${JSON.stringify(text.slice(0, 200))} -> ${JSON.stringify(r.text.slice(0, 300))}`);
  assertNoLeak(r.text, secret, rule);
  if (exact) assert.equal(r.text, `${before}<SECRET:${rule}>${after}`);
}

describe('private keys: the whole block from BEGIN to END, whatever the lines carry', () => {
  const body = Array.from({ length: 5 }, () => rnd(BASE64, 64));
  const begin = '-----BEGIN RSA PRIVATE KEY-----';
  const end = '-----END RSA PRIVATE KEY-----';
  for (const prefix of ['# ', ' * ', '; ', '> ', '// ', '-- ', '#']) {
    test(`lines prefixed with ${JSON.stringify(prefix)}`, () => {
      const text = `config:\n${prefix}${begin}\n${body.map((l) => prefix + l).join('\n')}\n${prefix}${end}\nrest = 1\n`;
      const r = redactSecrets(text);
      assert.deepEqual(r.counts, { private_key: 1 });
      assertNoLeak(r.text, body.join('\n'), 'prefixed key');
      assert.equal(r.text, `config:\n${prefix}${begin}\n${prefix}<SECRET:private_key>\n${prefix}${end}\nrest = 1\n`);
    });
  }

  test('XML entities for the line breaks (&#10;, &#xA;, &#13;&#10;)', () => {
    for (const nl of ['&#10;', '&#xA;', '&#13;&#10;']) {
      const text = `<key>${begin}${nl}${body.join(nl)}${nl}${end}</key>`;
      const r = redactSecrets(text);
      assert.deepEqual(r.counts, { private_key: 1 }, nl);
      assert.equal(r.text, `<key>${begin}${nl}<SECRET:private_key>${nl}${end}</key>`);
    }
  });

  test('a header line without key material (parsing code) is left alone, also with an END further on', () => {
    const code = `if (pem.startsWith('${begin}')) {\n  const inner = pem.slice(${begin.length}, pem.indexOf('${end}'));\n}\n`;
    assert.deepEqual(redactSecrets(code).counts, {});
  });

  test('SSH2 (RFC 4716 / ssh.com) private keys', () => {
    const text = `---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: "rsa-key-20240101"\n${body.join('\n')}\n---- END SSH2 ENCRYPTED PRIVATE KEY ----\n`;
    const r = redactSecrets(text);
    assert.deepEqual(r.counts, { private_key: 1 });
    assertNoLeak(r.text, body.join('\n'), 'ssh2');
    assert.equal(r.text, '---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\n<SECRET:private_key>\n---- END SSH2 ENCRYPTED PRIVATE KEY ----\n');
  });

  test('PuTTY .ppk keys, up to and including the Private-MAC', () => {
    const mac = rnd(HEX, 64);
    const text = `PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy\nPublic-Lines: 2\n${body[0]}\n${body[1]}\nPrivate-Lines: 3\n${body.slice(2).join('\n')}\nPrivate-MAC: ${mac}\n`;
    const r = redactSecrets(text);
    assert.deepEqual(r.counts, { private_key: 1 });
    assertNoLeak(r.text, body.join('\n') + '\n' + mac, 'putty');
    assert.equal(r.text, 'PuTTY-User-Key-File-3: ssh-ed25519\n<SECRET:private_key>\n');
  });
});

describe('unquoted passwords, URLs, curl, kubeconfig', () => {
  test('YAML, INI, .properties, .NET connection strings, PGPASSWORD', () => {
    const pw = (): string => `${rnd(ALNUM, 10)}!${rnd(DIGITS, 2)}`;
    check('password', 'database:\n  host: db\n  password: ', pw(), '\n  user: app\n');
    check('password', '[client]\npassword = ', pw(), '  # from the vault\n');
    check('password', 'spring.datasource.url=jdbc:postgresql://db/app\nspring.datasource.password=', `${pw()}&x`, '\n');
    check('password', 'var cs = "Server=db;Database=app;User Id=sa;Password=', pw(), ';Encrypt=true";');
    check('password', 'export PGPASSWORD=', pw(), '\npsql -h db app\n');
    check('password', '- name: DB\n  value:\n    db_password: ', pw(), '\n');
  });

  test('…but not code: types, variables, calls, keyword arguments', () => {
    const code = [
      'interface Login {\n  password: string\n}\n',
      'class User:\n    password: str\n    token: Optional[str] = None\n',
      'def login(password=None, user="x"):\n    connect(password=pw)\n    password = getpass()\n    password = self._password\n',
      'const { password: hashed } = user;\nconst opts = { password: hashedPassword };\n',
      'password: ${{ secrets.DB_PASSWORD }}\npassword: !vault |\npassword: <your-password>\npassword: ${DB_PASSWORD}\n',
      "'allPass': 'overEvery',\n  'anyPass': 'overSome',\n    password: \"[type=password]\",\n",
    ];
    for (const c of code) assert.deepEqual(redactSecrets(c).counts, {}, c);
  });

  test('URLs: an empty user, a password with "/" or "@"; a port and a path are not a password', () => {
    check('url_password', 'REDIS_URL=redis://:', rnd(ALNUM, 18), '@cache:6379/0');
    check('url_password', 'DATABASE_URL=postgres://app:', `${rnd(ALNUM, 6)}/${rnd(ALNUM, 6)}@${rnd(ALNUM, 6)}`, '@db:5432/app');
    assert.deepEqual(redactSecrets('see http://localhost:3000/@vite/client and http://host:8080/a/b@c').counts, {});
  });

  test('curl -u / --user, also on a continued line', () => {
    check('curl_auth', 'curl -u deploy:', rnd(ALNUM, 14), ' https://api.example.com/v1');
    check('curl_auth', 'curl -s --user "deploy:', rnd(ALNUM, 14), '" https://api.example.com/v1');
    check('curl_auth', 'curl -X POST \\\n  --user=ci:', rnd(ALNUM, 14), ' \\\n  https://x.example.com');
    assert.deepEqual(redactSecrets('curl -u "$USER:$PASS" https://x\ndocker run -u 1000:1000 img\n').counts, {});
  });

  test('kubeconfig client-key-data and client-certificate-data, kilobytes long', () => {
    const key = rnd(BASE64, 2400) + '==';
    check('kubeconfig_credential', 'users:\n- name: admin\n  user:\n    client-key-data: ', key, '\n');
    check('kubeconfig_credential', '{"client-certificate-data": "', rnd(BASE64, 1600), '"}');
  });

  test('values longer than 1,000 characters are redacted whole', () => {
    check('secret', 'const apiKey = "', rnd(BASE64URL, 1500), '";');
    check('high_entropy', 'client_secret: ', rnd(BASE64URL, 2000), '\n');
    check('secret', 'TOKEN=', rnd(ALNUM, 1200), '\n');
  });
});

describe('token families from gitleaks\' rule list', () => {
  const discordId = Buffer.from(rnd(DIGITS, 18).replace(/^0/, '1')).toString('base64').replace(/=+$/, '');
  const cases: Array<[string, string, string, string]> = [
    ['atlassian_token', 'JIRA_TOKEN="', `ATATT3${rnd(BASE64URL, 186)}`, '"'],
    ['azure_devops_token', 'pat = "', `${rnd(ALNUM, 52)}JQQJ${rnd(ALNUM, 20)}AZDO${rnd(ALNUM, 4)}`, '"'],
    ['grafana_token', 'GF_TOKEN=', `glsa_${rnd(ALNUM, 32)}_${rnd(HEX, 8)}`, ''],
    ['grafana_token', 'grafana: ', `glc_${rnd(ALNUM, 60)}`, ''],
    ['sentry_token', 'SENTRY="', `sntryu_${rnd(HEX, 64)}`, '"'],
    ['newrelic_key', 'nr = "', `NRAK-${rnd(UPPER + DIGITS, 27)}`, '"'],
    ['terraform_token', 'token = "', `${rnd(LOWER + DIGITS, 14)}.atlasv1.${rnd(ALNUM, 67)}`, '"'],
    ['onepassword_token', 'OP_SERVICE_ACCOUNT_TOKEN=', `ops_eyJ${rnd(BASE64, 300)}`, ''],
    ['onepassword_secret_key', 'secret key: ', `A3-${rnd(UPPER + DIGITS, 6)}-${rnd(UPPER + DIGITS, 11)}-${rnd(UPPER + DIGITS, 5)}-${rnd(UPPER + DIGITS, 5)}-${rnd(UPPER + DIGITS, 5)}`, ''],
    ['doppler_token', 'DOPPLER="', `dp.pt.${rnd(ALNUM, 43)}`, '"'],
    ['square_token', 'square = "', `sq0atp-${rnd(BASE64URL, 22)}`, '"'],
    ['square_token', 'accessToken: "', `EAAA${rnd(ALNUM, 60)}`, '"'],
    ['planetscale_token', 'DATABASE_PASSWORD_X: "', `pscale_pw_${rnd(ALNUM, 43)}`, '"'],
    ['postman_token', 'x-api-key: ', `PMAK-${rnd(HEX, 24)}-${rnd(HEX, 34)}`, ''],
    ['heroku_key', 'heroku: "', `HRKU-AA${rnd(BASE64URL, 58)}`, '"'],
    ['linear_key', 'linear = "', `lin_api_${rnd(ALNUM, 40)}`, '"'],
    ['discord_token', 'client.login("', `${discordId}.${rnd(BASE64URL, 6)}.${rnd(BASE64URL, 38)}`, '");'],
    ['sendinblue_key', 'brevo = "', `xkeysib-${rnd(HEX, 64)}-${rnd(ALNUM, 16)}`, '"'],
    ['perplexity_key', 'PPLX=', `pplx-${rnd(ALNUM, 48)}`, ''],
    ['rubygems_token', ':rubygems_api_key: ', `rubygems_${rnd(HEX, 48)}`, ''],
    ['dynatrace_token', 'DT_API_TOKEN=', `dt0c01.${rnd(ALNUM, 24)}.${rnd(ALNUM, 64)}`, ''],
    // A provider's name with a random value (gitleaks' semi-generic rules).
    ['sentry_token', 'SENTRY_AUTH_TOKEN=', rnd(HEX, 64), ''],
    ['heroku_key', 'HEROKU_API_KEY=', uuid(), ''],
    ['datadog_key', 'datadog_api_key: "', rnd(HEX, 32), '"'],
    ['discord_token', 'DISCORD_CLIENT_SECRET = "', rnd(BASE64URL, 32), '"'],
  ];
  for (const [rule, before, secret, after] of cases) {
    test(`${rule}: ${before.trim()}…`, () => check(rule, before, secret, after));
  }

  test('a provider name with configuration, not credentials: ids, URLs, names', () => {
    const cfg = [
      `SENTRY_DSN=https://${rnd(HEX, 32)}@o1.ingest.sentry.io/1\n`, `DISCORD_CLIENT_ID=${rnd(DIGITS, 18)}\n`,
      `sentry_release: ${rnd(HEX, 7)}\n`, 'heroku_app_name: my-app-12345\n', `algoliaAppId: "${rnd(UPPER + DIGITS, 10)}"\n`,
    ];
    for (const c of cfg) assert.deepEqual(redactSecrets(c).counts, {}, c);
  });
});

describe('entropy pass over quoted strings', () => {
  test('a random base64 string, whatever its name', () => {
    check('high_entropy_string', 'const x = "', rnd(BASE64, 40), '";');
    check('high_entropy_string', "headers = {'X-Thing': '", rnd(BASE64URL, 48), "'}");
  });

  test('base64 DER of a private key (PKCS#8) is a private key', () => {
    const der = Buffer.concat([Buffer.from([0x30, 0x82, 0x04, 0xbe, 0x02, 0x01, 0x00, 0x30, 0x0d]), randomBytes(60)]);
    check('private_key', 'const k = "', der.toString('base64'), '";');
  });

  test('what only looks random: hashes, UUIDs, alphabets, encoded text, files, public keys, SRI, paths', () => {
    const spki = Buffer.concat([Buffer.from([0x30, 0x59, 0x30, 0x13, 0x06, 0x07]), randomBytes(40)]).toString('base64');
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(40)]).toString('base64');
    const code = [
      `const sha = "${rnd(HEX, 64)}";`, `id: '${uuid()}'`, `const ALPHABET = "${UPPER}${LOWER}${DIGITS}+/";`,
      `const fixture = "${Buffer.from('The quick brown fox jumps over the lazy dog, 0123456789 times.').toString('base64')}";`,
      `const icon = "${png}";`, `const serverKey = "${spki}";`, `integrity: "sha512-${rnd(BASE64, 86)}=="`,
      `const publicKey = "${rnd(BASE64, 44)}";`, `const route = "/api/v2/users/profileSettings/notificationPreferences";`,
      `const name = "Cannot_find_name_0_Did_you_mean_1_2552";`, `expect(hash).toBe("${rnd(BASE64, 43)}=");`,
    ];
    for (const c of code) assert.deepEqual(redactSecrets(c).counts, {}, c);
  });
});

// Speed on these inputs: scripts/bench-secrets.ts. A backtracking blow-up takes minutes: the
// timeout turns it into a failure instead of a hang.
test('hostile input for the new rules completes with the right redactions', { timeout: 120_000 }, () => {
  const longKey = rnd(BASE64, MB);
  const begin = '-----BEGIN PRIVATE KEY-----';
  const cases: Record<string, [string, string, Record<string, number>]> = {
    'BEGIN + "# " x 1e5': [`${begin}\n${'# '.repeat(100_000)}`, `${begin}\n${'# '.repeat(100_000)}`, {}],
    'BEGIN x 3e4 and one END': [`${`${begin}\n`.repeat(30_000)}-----END PRIVATE KEY-----`, `${`${begin}\n`.repeat(30_000)}-----END PRIVATE KEY-----`, {}],
    'curl -u x 1e5': ['curl -u '.repeat(100_000), 'curl -u '.repeat(100_000), {}],
    'redis://: x 1e5': ['redis://:'.repeat(100_000), 'redis://:'.repeat(100_000), {}],
    '"password: " lines x 1e5': ['password: \n'.repeat(100_000), 'password: \n'.repeat(100_000), {}],
    'Password= x 1e5': ['Password='.repeat(100_000), 'Password='.repeat(100_000), {}],
    'JQQJ x 2e5': ['JQQJ'.repeat(200_000), 'JQQJ'.repeat(200_000), {}],
    'quote + aB3 x 3e5': [`"${'aB3'.repeat(300_000)}`, `"${'aB3'.repeat(300_000)}`, {}],
    'sentry= x 1e5': ['sentry='.repeat(100_000), 'sentry='.repeat(100_000), {}],
    'client-key-data + 1 MB of base64': [`client-key-data: ${longKey}\n`, 'client-key-data: <SECRET:kubeconfig_credential>\n', { kubeconfig_credential: 1 }],
    'apiKey = "1 MB"': [`apiKey = "${longKey}"`, 'apiKey = "<SECRET:secret>"', { secret: 1 }],
    'token= x 1e5 then 1 MB': [`${'token='.repeat(100_000)}${longKey}`, null as unknown as string, {}],
  };
  for (const [name, [text, want, counts]] of Object.entries(cases)) {
    const r = redactSecrets(text);
    if (want === null) {
      assertNoLeak(r.text.slice(0, 2000), longKey.slice(0, 2000), name);
      continue;
    }
    assert.deepEqual(r.counts, counts, name);
    assert.ok(r.text === want, `${name}: ${r.text.length} characters out, ${want.length} expected; starts ${JSON.stringify(r.text.slice(0, 80))}`);
  }
});

test('the redaction fingerprint changes with the user\'s patterns and only with them', () => {
  assert.equal(redactionFingerprint([]), redactionFingerprint([]));
  assert.notEqual(redactionFingerprint([]), redactionFingerprint(['ACME-[0-9]{6}']));
  assert.notEqual(redactionFingerprint(['a']), redactionFingerprint(['b']));
  assert.match(redactionFingerprint(), /^[0-9a-f]{64}$/);
});
