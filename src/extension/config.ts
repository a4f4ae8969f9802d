// Typed getters for every `workspaceLm.*` setting: the one place that knows their names and
// defaults (which match package.json's contributes.configuration).
import * as vscode from 'vscode';
import type { CompletionMode, CompletionSettings } from '../shared/protocol';
import { DEFAULT_COMPLETION_SETTINGS } from '../ml/config';
import { DEFAULT_PRESET, DEFAULT_TIME_BUDGET_MINUTES } from '../ml/config';

export type PresetSetting = 'tiny' | 'small' | 'seed';

function section(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('workspaceLm');
}

export const config = {
  preset(): PresetSetting {
    const v = section().get<string>('preset', DEFAULT_PRESET);
    return v === 'tiny' || v === 'small' || v === 'seed' ? v : DEFAULT_PRESET;
  },
  /** 0 = automatic (all cores, at low priority). */
  threads(): number {
    const v = section().get<number>('threads', 0);
    return Number.isInteger(v) && v >= 0 ? v : 0;
  },
  /** Training time budget per run in minutes (0 = until the epochs are done). */
  maxMinutes(): number {
    const v = section().get<number>('maxMinutes', DEFAULT_TIME_BUDGET_MINUTES);
    return typeof v === 'number' && v >= 0 ? v : 15;
  },
  /** Passes over the workspace per run (0 = the preset's default). */
  epochs(): number {
    const v = section().get<number>('epochs', 0);
    return typeof v === 'number' && v >= 0 ? v : 0;
  },
  /** Memory budget of training in MB. */
  memoryCapMb(): number {
    const v = section().get<number>('memoryCapMb', 1536);
    return typeof v === 'number' && v >= 256 ? v : 1536;
  },
  autoTrainOnOpen(): boolean {
    return section().get<boolean>('autoTrainOnOpen', false);
  },
  retrainOnChanges(): boolean {
    return section().get<boolean>('retrainOnChanges', false);
  },
  include(): string[] {
    return section().get<string[]>('include', []).filter((x) => typeof x === 'string');
  },
  exclude(): string[] {
    return section().get<string[]>('exclude', []).filter((x) => typeof x === 'string');
  },
  completionsEnabled(): boolean {
    return section().get<boolean>('completions.enabled', true);
  },
  async setCompletionsEnabled(on: boolean): Promise<void> {
    await section().update('completions.enabled', on, vscode.ConfigurationTarget.Global);
  },
  /** The completion settings sent to the language server. */
  completion(): CompletionSettings {
    const s = section();
    const mode = s.get<string>('completions.mode', DEFAULT_COMPLETION_SETTINGS.mode);
    return {
      ...DEFAULT_COMPLETION_SETTINGS,
      enabled: this.completionsEnabled(),
      mode: (mode === 'block' ? 'block' : 'line') as CompletionMode,
      maxTokens: s.get<number>('completions.maxTokens', DEFAULT_COMPLETION_SETTINGS.maxTokens),
      debounceMs: s.get<number>('completions.debounceMs', DEFAULT_COMPLETION_SETTINGS.debounceMs),
      temperature: s.get<number>('completions.temperature', DEFAULT_COMPLETION_SETTINGS.temperature),
      disabledLanguages: s.get<string[]>('completions.disabledLanguages', DEFAULT_COMPLETION_SETTINGS.disabledLanguages),
    };
  },
  /** VS Code's own exclusions (files.exclude, search.exclude) as glob patterns that are on. */
  editorExcludes(): string[] {
    const out: string[] = [];
    for (const key of ['files.exclude', 'search.exclude']) {
      const obj = vscode.workspace.getConfiguration().get<Record<string, unknown>>(key, {});
      for (const [glob, on] of Object.entries(obj)) if (on === true) out.push(glob);
    }
    return out;
  },
};
