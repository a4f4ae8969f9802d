// Messages between the extension host and the Training sidebar webview, declared once. The host
// validates everything it receives (`parseWebviewMessage`): a webview is a web page.

import type { TrainingSnapshot, TrainingStatus } from './protocol';

/** Host → webview. */
export type HostMessage =
  | { type: 'snapshot'; snapshot: TrainingSnapshot; trusted: boolean; note?: string }
  | { type: 'status'; status: TrainingStatus }
  | { type: 'unavailable'; reason: string };

/** The sidebar's buttons (the host maps each to its palette command). */
export const WEBVIEW_COMMANDS = ['start', 'pause', 'resume', 'stop'] as const;
export type WebviewCommand = (typeof WEBVIEW_COMMANDS)[number];

/** Webview → host. */
export type WebviewMessage =
  | { type: 'ready' }
  | { type: 'command'; command: WebviewCommand };

/** The message if it is one we accept, else null (anything else is ignored, never evaluated). */
export function parseWebviewMessage(raw: unknown): WebviewMessage | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const m = raw as Record<string, unknown>;
  if (m['type'] === 'ready') return { type: 'ready' };
  if (m['type'] === 'command' && typeof m['command'] === 'string' && (WEBVIEW_COMMANDS as readonly string[]).includes(m['command'])) {
    return { type: 'command', command: m['command'] as WebviewCommand };
  }
  return null;
}
