// Typed getters for every `workspaceLm.*` setting: the one place in the extension that knows their
// names. Defaults, enums and ranges are not restated here: they are package.json's
// contributes.configuration (what the user sees in the Settings editor). VS Code answers a
// setting's default when the user set nothing; a value that does not fit its declaration (a
// hand-edited settings.json) falls back to the declared default. test/settings.test.ts checks
// that those defaults are the engine's and the server's.
import type * as vscode from 'vscode';
import type { CompletionMode, CompletionModelKind, CompletionSettings, PresetName } from '../shared/protocol';

/** One setting's declaration in package.json's contributes.configuration.properties. */
export interface SettingSchema {
  type: 'boolean' | 'string' | 'integer' | 'number' | 'array';
  default: unknown;
  enum?: unknown[];
  enumDescriptions?: string[];
  minimum?: number;
  maximum?: number;
  items?: { type: 'string' };
}

/** Whether `v` is a value that `schema` allows (the subset of JSON schema package.json uses here). */
export function conforms(schema: SettingSchema, v: unknown): boolean {
  if (schema.enum !== undefined && !schema.enum.includes(v)) return false;
  switch (schema.type) {
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'integer':
    case 'number':
      return typeof v === 'number' && Number.isFinite(v) && (schema.type === 'number' || Number.isInteger(v))
        && (schema.minimum === undefined || v >= schema.minimum) && (schema.maximum === undefined || v <= schema.maximum);
    case 'array':
      return Array.isArray(v) && (schema.items === undefined || v.every((x) => typeof x === schema.items!.type));
  }
}

/** The settings declarations of an extension manifest (package.json), by full key. */
export function settingsSchema(packageJson: unknown): Record<string, SettingSchema> {
  const props = (packageJson as { contributes?: { configuration?: { properties?: Record<string, SettingSchema> } } } | null)
    ?.contributes?.configuration?.properties;
  if (props === undefined) throw new Error('package.json declares no contributes.configuration.properties');
  return props;
}

/** What Config reads settings through: `vscode.workspace` in the extension, a fake in tests. */
export interface SettingsStore {
  getConfiguration(section?: string): Pick<vscode.WorkspaceConfiguration, 'get' | 'update'>;
}

/** The completion settings the extension exposes (the server's other settings keep its defaults). */
export type ExtensionCompletionSettings = Pick<CompletionSettings, 'enabled' | 'mode' | 'model' | 'maxTokens' | 'debounceMs' | 'temperature' | 'disabledLanguages'>;

export class Config {
  constructor(private readonly schema: Record<string, SettingSchema>, private readonly store: SettingsStore) {}

  /** The user's value of `workspaceLm.<key>` if it fits the declaration, else the declared default. */
  private value<T>(key: string): T {
    const schema = this.schema[`workspaceLm.${key}`];
    if (schema === undefined) throw new Error(`workspaceLm.${key} is not declared in package.json`);
    const v = this.store.getConfiguration('workspaceLm').get<unknown>(key);
    return (conforms(schema, v) ? v : schema.default) as T;
  }

  /** Model size to train (package.json's enum: the engine's presets). */
  get preset(): PresetName {
    return this.value('preset');
  }
  /** Training threads; 0 = automatic (all cores, at low priority). */
  get threads(): number {
    return this.value('threads');
  }
  /** Training time budget per run in minutes (0 = until the epochs are done). */
  get maxMinutes(): number {
    return this.value('maxMinutes');
  }
  /** Passes over the workspace per run (0 = the preset's default). */
  get epochs(): number {
    return this.value('epochs');
  }
  /** Memory budget of training in MB. */
  get memoryCapMb(): number {
    return this.value('memoryCapMb');
  }
  get autoTrainOnOpen(): boolean {
    return this.value('autoTrainOnOpen');
  }
  get retrainOnChanges(): boolean {
    return this.value('retrainOnChanges');
  }
  /** Train even when a workspace folder is the home folder or a filesystem root. */
  get allowHomeFolder(): boolean {
    return this.value('allowHomeFolder');
  }
  /** Glob patterns to train on (empty = every text file not excluded). */
  get include(): string[] {
    return this.value('include');
  }
  /** Glob patterns never to train on (besides .gitignore and VS Code's exclusions). */
  get exclude(): string[] {
    return this.value('exclude');
  }
  get completionsEnabled(): boolean {
    return this.value('completions.enabled');
  }
  async setCompletionsEnabled(on: boolean): Promise<void> {
    await this.store.getConfiguration('workspaceLm').update('completions.enabled', on, true); // true: user settings
  }
  get completionMode(): CompletionMode {
    return this.value('completions.mode');
  }
  /** Which model completes: the served mixture, the GPT alone, or the n-gram + copy models alone. */
  get completionModel(): CompletionModelKind {
    return this.value('completions.model');
  }
  get maxTokens(): number {
    return this.value('completions.maxTokens');
  }
  get debounceMs(): number {
    return this.value('completions.debounceMs');
  }
  get temperature(): number {
    return this.value('completions.temperature');
  }
  get disabledLanguages(): string[] {
    return this.value('completions.disabledLanguages');
  }

  /** The completion settings sent to the language server (initializationOptions and updates). */
  get completion(): ExtensionCompletionSettings {
    return {
      enabled: this.completionsEnabled, mode: this.completionMode, model: this.completionModel, maxTokens: this.maxTokens,
      debounceMs: this.debounceMs, temperature: this.temperature, disabledLanguages: this.disabledLanguages,
    };
  }

  /** VS Code's own exclusions (files.exclude, search.exclude) as glob patterns that are on. */
  get editorExcludes(): string[] {
    const out: string[] = [];
    for (const key of ['files.exclude', 'search.exclude']) {
      const obj = this.store.getConfiguration().get<Record<string, unknown>>(key) ?? {};
      for (const [glob, on] of Object.entries(obj)) if (on === true) out.push(glob);
    }
    return out;
  }
}
