// The language server: LSP plumbing around the completion engine. Answers
// textDocument/inlineCompletion (LSP 3.18) and, for clients without it, textDocument/completion;
// keeps the served model current; reports its state with a custom notification (never an error
// per keystroke). Every request is validated; a bad one gets an LSP error or an empty answer.

import { fileURLToPath } from 'node:url';
import {
  CancellationToken, CompletionItem, CompletionItemKind, Connection, ErrorCodes, InitializeParams, InitializeResult,
  InlineCompletionItem, InlineCompletionRequest, Position, ResponseError, TextDocumentPositionParams, TextDocuments,
  TextDocumentSyncKind,
} from 'vscode-languageserver';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { COMPLETION_MODELS, COMPLETION_MODES, DEFAULT_COMPLETION_SETTINGS } from '../ml/config';
import {
  CompletionSettings, DeleteModelRequest, ExportBundleRequest, ImportModelRequest, InitializationOptions, ModelStatusNotification,
  ModelStatusParams, PauseTrainingRequest, ResumeTrainingRequest, StartTrainingRequest, StopTrainingRequest, TrainingSnapshotRequest,
  TrainingStatusNotification, UpdateSettingsNotification, WorkspaceLmConfiguration,
} from '../shared/protocol';
import { TrainingService } from './trainingService';
import { exportBundle, importModel } from '../run/exportBundle';
import { CompletionEngine, CompletionResult } from '../completion/engine';
import { cursorLine } from '../completion/cursorLine';
import { ModelWatcher } from './modelWatcher';
import { defaultRunDir, deleteRunDir, legacyRunNotice } from '../run/layout';
import * as path from 'node:path';

export interface ServerOptions {
  /** Serve this checkpoint or run directory (CLI --checkpoint); else from initializationOptions or the workspace root. */
  modelDir?: string;
  /** How often to look for a newer checkpoint. */
  pollMs?: number;
  log?: (message: string) => void;
}

/** Merges a partial settings object over the current one, ignoring wrongly typed fields. */
export function mergeSettings(base: CompletionSettings, patch: unknown): CompletionSettings {
  if (typeof patch !== 'object' || patch === null) return base;
  const p = patch as Record<string, unknown>;
  const out: CompletionSettings = { ...base };
  if (typeof p['enabled'] === 'boolean') out.enabled = p['enabled'];
  const oneOf = <T extends string>(values: readonly T[], v: unknown): v is T => typeof v === 'string' && (values as readonly string[]).includes(v);
  if (oneOf(COMPLETION_MODES, p['mode'])) out.mode = p['mode'];
  if (oneOf(COMPLETION_MODELS, p['model'])) out.model = p['model'];
  const num = (k: keyof CompletionSettings, lo: number, hi: number): void => {
    const v = p[k];
    if (typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi) (out as unknown as Record<string, unknown>)[k] = v;
  };
  num('maxTokens', 1, 512);
  num('temperature', 0, 5);
  num('topP', 0.01, 1);
  num('debounceMs', 0, 2000);
  num('minMeanLogProb', -100, 0);
  if (Array.isArray(p['disabledLanguages']) && p['disabledLanguages'].every((x) => typeof x === 'string')) out.disabledLanguages = p['disabledLanguages'] as string[];
  return out;
}

export function startLanguageServer(connection: Connection, opts: ServerOptions = {}): void {
  const documents = new TextDocuments(TextDocument);
  let settings = DEFAULT_COMPLETION_SETTINGS;
  let watcher: ModelWatcher | null = null;
  const engine = new CompletionEngine(() => watcher?.model ?? null, settings);
  /** Per document: the newest request; an older one still decoding gives up. */
  const generation = new Map<string, number>();
  const log = opts.log ?? ((m: string) => connection.console.log(m));

  const sendStatus = (s: ModelStatusParams): void => {
    log(`model: ${s.state}: ${s.message}`);
    void connection.sendNotification(ModelStatusNotification, s);
  };

  connection.onInitialize((params: InitializeParams): InitializeResult => {
    const init = (params.initializationOptions ?? {}) as InitializationOptions;
    settings = mergeSettings(settings, init.settings);
    engine.updateSettings(settings);
    const root = params.workspaceFolders?.[0]?.uri ?? params.rootUri ?? null;
    let dir = opts.modelDir ?? (typeof init.modelDir === 'string' ? init.modelDir : undefined);
    // By default the root's run in the user's runs folder: never a folder inside the repository,
    // which a cloned repository could ship (run/layout.ts).
    if (dir === undefined && root !== null && root.startsWith('file:')) {
      const rootDir = fileURLToPath(root);
      dir = defaultRunDir(rootDir);
      void legacyRunNotice(rootDir).then((notice) => { if (notice !== null) log(notice); });
    }
    if (dir !== undefined) watcher = new ModelWatcher(dir, sendStatus, opts.pollMs ?? 2000);
    const inline = params.capabilities.textDocument?.inlineCompletion !== undefined;
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        inlineCompletionProvider: {},
        // Clients without inline completions get the same suggestion as a completion item.
        ...(inline ? {} : { completionProvider: { resolveProvider: false } }),
      },
      serverInfo: { name: 'workspace-lm' },
    };
  });

  connection.onInitialized(() => {
    if (watcher === null) sendStatus({ state: 'no-model', message: 'no model folder: pass --checkpoint DIR or open a workspace folder' });
    else void watcher.start();
  });

  // Training runs in this process's worker pool; requests control it, notifications report it.
  const training = new TrainingService((st) => void connection.sendNotification(TrainingStatusNotification, st), log);
  const asError = (e: unknown): ResponseError<void> => new ResponseError(ErrorCodes.InvalidParams, (e as Error).message);
  // Params are typed by the request objects but come off the wire: every handler still checks them.
  connection.onRequest(StartTrainingRequest, async (p) => {
    try {
      return await training.start(p);
    } catch (e) {
      throw asError(e);
    }
  });
  connection.onRequest(PauseTrainingRequest, () => training.pause());
  connection.onRequest(ResumeTrainingRequest, () => training.resume());
  connection.onRequest(StopTrainingRequest, () => training.stop());
  connection.onRequest(TrainingSnapshotRequest, (p) =>
    training.snapshot(typeof p?.outDir === 'string' ? p.outDir : undefined));

  connection.onRequest(ExportBundleRequest, async (p) => {
    if (typeof p?.runDir !== 'string' || typeof p.toDir !== 'string') throw new ResponseError(ErrorCodes.InvalidParams, 'expected { runDir, toDir }');
    try {
      const r = await exportBundle(p.runDir, p.toDir);
      return { dir: r.dir, files: r.files };
    } catch (e) {
      throw asError(e);
    }
  });
  connection.onRequest(DeleteModelRequest, async (p) => {
    if (typeof p?.runDir !== 'string' || p.runDir === '') throw new ResponseError(ErrorCodes.InvalidParams, 'expected { runDir }');
    const runDir = path.resolve(p.runDir);
    if (training.state === 'training' || training.state === 'preparing' || training.state === 'paused' || training.state === 'stopping') {
      training.stop();
      await training.idle();
    }
    // Unloaded before the files go, so no suggestion comes from a deleted model.
    if (watcher !== null && path.resolve(watcher.folder) === runDir) watcher.unload(`the model in ${runDir} was deleted`);
    try {
      await deleteRunDir(runDir);
    } catch (e) {
      throw asError(e);
    }
  });

  connection.onRequest(ImportModelRequest, async (p) => {
    if (typeof p?.srcDir !== 'string' || typeof p.runDir !== 'string') throw new ResponseError(ErrorCodes.InvalidParams, 'expected { srcDir, runDir }');
    if (training.state === 'training' || training.state === 'preparing' || training.state === 'paused') {
      throw new ResponseError(ErrorCodes.InvalidRequest, 'a training run is active: stop it before importing a model (its next checkpoint would replace the import)');
    }
    try {
      const r = await importModel(p.srcDir, p.runDir);
      await watcher?.check();
      return { checkpointDir: r.checkpointDir, step: r.step };
    } catch (e) {
      throw asError(e);
    }
  });

  connection.onNotification(UpdateSettingsNotification, (patch) => {
    settings = mergeSettings(settings, patch);
    engine.updateSettings(settings);
  });
  connection.onDidChangeConfiguration((change) => {
    const section = (change.settings as WorkspaceLmConfiguration | null)?.workspaceLm;
    if (section !== undefined) {
      settings = mergeSettings(settings, section);
      engine.updateSettings(settings);
    }
  });
  documents.onDidClose((e) => {
    engine.forget(e.document.uri);
    generation.delete(e.document.uri);
  });

  /** Validates the position and runs the engine; null when there is nothing to suggest. */
  const suggest = async (p: TextDocumentPositionParams, token: CancellationToken): Promise<{ result: CompletionResult; doc: TextDocument; pos: Position } | null> => {
    const uri = p?.textDocument?.uri;
    const pos = p?.position;
    if (typeof uri !== 'string' || typeof pos?.line !== 'number' || typeof pos?.character !== 'number' || !Number.isInteger(pos.line) || !Number.isInteger(pos.character)) {
      throw new ResponseError(ErrorCodes.InvalidParams, 'expected { textDocument: { uri }, position: { line, character } }');
    }
    const doc = documents.get(uri);
    // Unknown (never opened) and untitled documents: nothing to complete, no work.
    if (doc === undefined || !uri.startsWith('file:')) return null;
    if (pos.line < 0 || pos.character < 0 || pos.line >= doc.lineCount) {
      throw new ResponseError(ErrorCodes.InvalidParams, `position ${pos.line}:${pos.character} is outside the document (${doc.lineCount} lines)`);
    }
    if (settings.disabledLanguages.includes(doc.languageId)) return null;
    const gen = (generation.get(uri) ?? 0) + 1;
    generation.set(uri, gen);
    const superseded = (): boolean => token.isCancellationRequested || generation.get(uri) !== gen;
    if (settings.debounceMs > 0) await new Promise((r) => setTimeout(r, settings.debounceMs));
    if (superseded()) return null;
    const text = doc.getText();
    const result = await engine.complete({ uri, text, offset: doc.offsetAt(pos) }, superseded);
    if (result.text === '') return null;
    return { result, doc, pos };
  };

  connection.onRequest(InlineCompletionRequest.type, async (params, token): Promise<InlineCompletionItem[] | null> => {
    const s = await suggest(params, token);
    if (s === null) return null;
    const end = { line: s.pos.line, character: s.pos.character + s.result.replaceChars };
    return [{ insertText: s.result.text, range: { start: s.pos, end } }];
  });

  connection.onCompletion(async (params, token): Promise<CompletionItem[] | null> => {
    const s = await suggest(params, token);
    if (s === null) return null;
    const firstLine = s.result.text.split('\n')[0]!;
    // The word being typed, read from a bounded stretch before the cursor (cursorLine.ts).
    const word = cursorLine(s.doc.getText(), s.doc.offsetAt(s.pos)).wordBefore;
    return [{
      label: (word + firstLine).trim() || firstLine,
      kind: CompletionItemKind.Text,
      detail: 'Workspace LM',
      insertText: s.result.text,
      // Keep it on top and matched against what was typed so far on this word.
      sortText: '0',
      filterText: word + firstLine,
      textEdit: { range: { start: { line: s.pos.line, character: s.pos.character - word.length }, end: { line: s.pos.line, character: s.pos.character + s.result.replaceChars } }, newText: word + s.result.text },
    }];
  });

  connection.onShutdown(async () => {
    watcher?.stop();
    // A window reload or editor exit: save the run's place so it resumes from here.
    if (training.state === 'training' || training.state === 'paused' || training.state === 'preparing') {
      training.stop();
      await training.idle();
    }
  });
  documents.listen(connection);
  connection.listen();
}
