// The settings a user sees are package.json's contributes.configuration; the extension reads them
// without restating defaults (src/extension/config.ts). These tests keep those declarations equal
// to the engine's and the server's own defaults, so the two cannot drift apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MEMORY_CAP_MB, DEFAULT_PRESET, DEFAULT_TIME_BUDGET_MINUTES, PRESETS } from '../src/ml/config';
import { COMPLETION_MODELS, COMPLETION_MODES, CompletionSettings, DEFAULT_COMPLETION_SETTINGS } from '../src/ml/config';
import { Config, conforms, SettingsStore, settingsSchema } from '../src/extension/config';
import { mergeSettings } from '../src/server/languageServer';

const pkg: unknown = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8'));
const schema = settingsSchema(pkg);
const COMPLETIONS = 'workspaceLm.completions.';

/** Settings of the training run and what the engine does when the extension sends none. */
const ENGINE_DEFAULTS: Record<string, unknown> = {
  'workspaceLm.preset': DEFAULT_PRESET,
  'workspaceLm.maxMinutes': DEFAULT_TIME_BUDGET_MINUTES,
  'workspaceLm.memoryCapMb': DEFAULT_MEMORY_CAP_MB,
  // 0 = "not set": the extension sends no value and the trainer uses all cores / the preset's epochs.
  'workspaceLm.threads': 0,
  'workspaceLm.epochs': 0,
};
/** Settings only the extension acts on (no engine default to match). */
const EXTENSION_ONLY = ['workspaceLm.autoTrainOnOpen', 'workspaceLm.retrainOnChanges', 'workspaceLm.allowHomeFolder', 'workspaceLm.include', 'workspaceLm.exclude'];

/** A settings store like VS Code's: the user's value, else the declared default. */
function store(user: Record<string, unknown> = {}): SettingsStore {
  return {
    getConfiguration: (section?: string) => ({
      get: (key: string) => {
        const full = section !== undefined ? `${section}.${key}` : key;
        return full in user ? user[full] : schema[full]?.default;
      },
      update: () => Promise.resolve(),
    }),
  } as unknown as SettingsStore;
}

test('every setting is accounted for: an engine default, a completion setting of the server, or extension-only', () => {
  for (const key of Object.keys(schema)) {
    const known = key in ENGINE_DEFAULTS || EXTENSION_ONLY.includes(key) || (key.startsWith(COMPLETIONS) && key.slice(COMPLETIONS.length) in DEFAULT_COMPLETION_SETTINGS);
    assert.ok(known, `${key}: add it to this test (which default must it equal?)`);
  }
  for (const key of [...Object.keys(ENGINE_DEFAULTS), ...EXTENSION_ONLY]) assert.ok(key in schema, `${key} is declared in package.json`);
});

test('every declared default fits its own declaration (type, enum, range)', () => {
  for (const [key, s] of Object.entries(schema)) assert.ok(conforms(s, s.default), `${key}: default ${JSON.stringify(s.default)}`);
});

test('the training settings default to the engine\'s defaults (src/ml/config.ts)', () => {
  for (const [key, value] of Object.entries(ENGINE_DEFAULTS)) assert.deepEqual(schema[key]!.default, value, key);
  assert.deepEqual(schema['workspaceLm.preset']!.enum, Object.keys(PRESETS), 'the preset choices are the engine\'s presets');
  assert.equal(schema['workspaceLm.preset']!.enumDescriptions?.length, Object.keys(PRESETS).length);
});

test('the completion settings default to the server\'s DEFAULT_COMPLETION_SETTINGS, with its choices', () => {
  const keys = Object.keys(schema).filter((k) => k.startsWith(COMPLETIONS));
  for (const key of keys) {
    const name = key.slice(COMPLETIONS.length) as keyof CompletionSettings;
    assert.deepEqual(schema[key]!.default, DEFAULT_COMPLETION_SETTINGS[name], key);
  }
  assert.deepEqual(schema[`${COMPLETIONS}mode`]!.enum, [...COMPLETION_MODES]);
  assert.deepEqual(schema[`${COMPLETIONS}model`]!.enum, [...COMPLETION_MODELS]);
  assert.equal(schema[`${COMPLETIONS}model`]!.enumDescriptions?.length, COMPLETION_MODELS.length);
});

test('every value a completion setting allows is one the server accepts (enums and range ends)', () => {
  // mergeSettings ignores what it does not accept: the merged value shows whether it was taken.
  const other = (v: unknown): unknown => (typeof v === 'number' ? v + 0.5 : typeof v === 'boolean' ? !v : Array.isArray(v) ? ['x'] : `not-${String(v)}`);
  for (const [key, s] of Object.entries(schema).filter(([k]) => k.startsWith(COMPLETIONS))) {
    const name = key.slice(COMPLETIONS.length);
    const samples = [s.default, ...(s.enum ?? []), ...(s.minimum !== undefined ? [s.minimum] : []), ...(s.maximum !== undefined ? [s.maximum] : [])];
    for (const v of samples) {
      const base = { ...DEFAULT_COMPLETION_SETTINGS, [name]: other(v) };
      assert.deepEqual((mergeSettings(base, { [name]: v }) as unknown as Record<string, unknown>)[name], v, `${key} = ${JSON.stringify(v)}`);
    }
  }
});

test('Config with nothing set reads the declared defaults; the server gets its own defaults', () => {
  const c = new Config(schema, store());
  assert.equal(c.preset, DEFAULT_PRESET);
  assert.equal(c.maxMinutes, DEFAULT_TIME_BUDGET_MINUTES);
  assert.equal(c.memoryCapMb, DEFAULT_MEMORY_CAP_MB);
  assert.equal(c.threads, 0);
  assert.equal(c.epochs, 0);
  assert.equal(c.autoTrainOnOpen, false);
  assert.equal(c.retrainOnChanges, false);
  assert.deepEqual(c.include, []);
  assert.deepEqual(c.exclude, []);
  const sent = c.completion;
  for (const [k, v] of Object.entries(sent)) assert.deepEqual(v, DEFAULT_COMPLETION_SETTINGS[k as keyof CompletionSettings], k);
  assert.deepEqual(mergeSettings(DEFAULT_COMPLETION_SETTINGS, sent), DEFAULT_COMPLETION_SETTINGS);
});

test('Config passes valid values through and falls back to the declared default for values that do not fit', () => {
  const valid = new Config(schema, store({
    'workspaceLm.preset': 'tiny', 'workspaceLm.maxMinutes': 2.5, 'workspaceLm.memoryCapMb': 4096, 'workspaceLm.threads': 3,
    'workspaceLm.exclude': ['**/gen/**'], 'workspaceLm.completions.model': 'counts', 'workspaceLm.completions.mode': 'block',
    'workspaceLm.completions.maxTokens': 512, 'workspaceLm.completions.enabled': false,
  }));
  assert.equal(valid.preset, 'tiny');
  assert.equal(valid.maxMinutes, 2.5);
  assert.equal(valid.memoryCapMb, 4096);
  assert.equal(valid.threads, 3);
  assert.deepEqual(valid.exclude, ['**/gen/**']);
  const sent = valid.completion;
  assert.deepEqual([sent.model, sent.mode, sent.maxTokens, sent.enabled], ['counts', 'block', 512, false]);

  const invalid = new Config(schema, store({
    'workspaceLm.preset': 'huge', 'workspaceLm.maxMinutes': -1, 'workspaceLm.memoryCapMb': 100, 'workspaceLm.threads': 1.5,
    'workspaceLm.exclude': ['ok', 3], 'workspaceLm.completions.model': 'bigger', 'workspaceLm.completions.maxTokens': 513,
    'workspaceLm.completions.enabled': 'yes', 'workspaceLm.completions.temperature': Number.NaN,
  }));
  assert.equal(invalid.preset, DEFAULT_PRESET);
  assert.equal(invalid.maxMinutes, DEFAULT_TIME_BUDGET_MINUTES);
  assert.equal(invalid.memoryCapMb, DEFAULT_MEMORY_CAP_MB);
  assert.equal(invalid.threads, 0);
  assert.deepEqual(invalid.exclude, []);
  assert.equal(invalid.completionModel, DEFAULT_COMPLETION_SETTINGS.model);
  assert.equal(invalid.maxTokens, DEFAULT_COMPLETION_SETTINGS.maxTokens);
  assert.equal(invalid.completionsEnabled, DEFAULT_COMPLETION_SETTINGS.enabled);
  assert.equal(invalid.temperature, DEFAULT_COMPLETION_SETTINGS.temperature);
});

test('Config refuses a setting package.json does not declare', () => {
  const c = new Config({}, store());
  assert.throws(() => c.preset, /workspaceLm\.preset is not declared in package\.json/);
});

test('settings that spend the machine are machine-scoped: a repository\'s .vscode/settings.json cannot set them', () => {
  const spending = ['preset', 'threads', 'maxMinutes', 'epochs', 'memoryCapMb', 'autoTrainOnOpen', 'retrainOnChanges', 'allowHomeFolder'].map((k) => `workspaceLm.${k}`);
  for (const key of spending) assert.equal((schema[key] as { scope?: string } | undefined)?.scope, 'machine', key);
});
