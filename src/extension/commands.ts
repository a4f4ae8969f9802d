// The palette commands (category "Workspace LM"). Each checks what it needs (trust, an open
// folder, a running server) and says plainly what is missing.
import * as vscode from 'vscode';
import { promises as fs } from 'node:fs';
import type { ExtensionState } from './extensionState';

export function registerCommands(ctx: vscode.ExtensionContext, st: ExtensionState): void {
  const reg = (id: string, fn: () => unknown): void => {
    ctx.subscriptions.push(vscode.commands.registerCommand(id, fn));
  };

  const train = async (retrain: boolean): Promise<void> => {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage('Workspace LM does not train in an untrusted workspace (Restricted Mode). Trust the workspace first.');
      return;
    }
    const folders = vscode.workspace.workspaceFolders?.filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath) ?? [];
    if (folders.length === 0 || st.runDir === null) {
      void vscode.window.showWarningMessage('Workspace LM: open a folder to train on.');
      return;
    }
    const client = await st.ensureClient();
    if (client === null) return;
    const { threads, maxMinutes, epochs } = st.config;
    let status;
    try {
      status = await client.startTraining({
        folders, outDir: st.runDir, preset: st.config.preset, resume: !retrain, retrain, memoryCapMb: st.config.memoryCapMb,
        ...(threads > 0 ? { threads } : {}), ...(maxMinutes > 0 ? { maxMinutes } : {}), ...(epochs > 0 ? { epochs } : {}),
        excludeGlobs: [...st.config.editorExcludes, ...st.config.exclude], includeGlobs: st.config.include,
        ...(st.config.allowHomeFolder ? { allowHomeOrRoot: true } : {}),
      });
    } catch (e) {
      st.output.error(`could not start training: ${(e as Error).message}`);
      void vscode.window.showErrorMessage(`Workspace LM: could not start training: ${(e as Error).message}`);
      return;
    }
    st.onTrainingStatus(status);
    if (/already/.test(status.message)) void vscode.window.showInformationMessage(`Workspace LM: ${status.message}`);
    if (!retrain) st.view.reveal();
  };
  reg('workspaceLm.train', () => train(false));
  // Not in the palette: used by "retrain on changes" after edits settle.
  reg('workspaceLm.retrain', () => train(true));

  reg('workspaceLm.pause', async () => st.onTrainingStatus(await (await st.ensureClient())?.pause() ?? st.training));
  reg('workspaceLm.resume', async () => st.onTrainingStatus(await (await st.ensureClient())?.resume() ?? st.training));
  reg('workspaceLm.stop', async () => st.onTrainingStatus(await (await st.ensureClient())?.stopTraining() ?? st.training));
  reg('workspaceLm.showTraining', () => st.view.reveal());
  reg('workspaceLm.openLog', () => st.output.show(true));

  reg('workspaceLm.exportBundle', async () => {
    const client = await st.ensureClient();
    if (client === null) return;
    const pick = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Export Here', title: 'Folder for the PyTorch training bundle' });
    if (pick === undefined || pick.length === 0) return;
    try {
      const r = await client.exportBundle(pick[0]!.fsPath);
      void vscode.window.showInformationMessage(`Workspace LM: training bundle written to ${r.dir}. Its README shows how to train it with torchrun.`);
    } catch (e) {
      void vscode.window.showErrorMessage(`Workspace LM: export failed: ${(e as Error).message}`);
    }
  });

  reg('workspaceLm.importModel', async () => {
    const client = await st.ensureClient();
    if (client === null) return;
    const pick = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Import', title: 'A trained model folder (model.safetensors, config.json, tokenizer.json)' });
    if (pick === undefined || pick.length === 0) return;
    try {
      await client.importModel(pick[0]!.fsPath);
      void vscode.window.showInformationMessage('Workspace LM: model imported; completions now use it.');
      await st.view.sendSnapshot();
    } catch (e) {
      void vscode.window.showErrorMessage(`Workspace LM: import failed: ${(e as Error).message}`);
    }
  });

  reg('workspaceLm.toggleCompletions', async () => {
    const on = !st.config.completionsEnabled;
    await st.config.setCompletionsEnabled(on);
    void vscode.window.setStatusBarMessage(`Workspace LM: inline completions ${on ? 'on' : 'off'}`, 2500);
  });

  reg('workspaceLm.deleteModel', async () => {
    if (st.runDir === null) return;
    const answer = await vscode.window.showWarningMessage(
      'Delete the trained model, its checkpoints and its dataset for this workspace?', { modal: true, detail: st.runDir }, 'Delete',
    );
    if (answer !== 'Delete') return;
    const client = st.client;
    // The server stops any run, unloads the model at once and deletes the folder; without a
    // server (never started) nothing serves it and the files are simply removed.
    if (client !== null) await client.deleteModel();
    else await fs.rm(st.runDir, { recursive: true, force: true });
    void vscode.window.showInformationMessage('Workspace LM: model deleted.');
    await st.view.sendSnapshot();
  });
}
