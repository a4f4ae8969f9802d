// Entry point of the `workspace-lm` command: dispatch, and errors as one line with an exit code.
import { completeCommand, infoCommand, serveCommand, trainCommand, UsageError, USAGE } from './commands';
import { exportCommand, importCommand } from './exportImportCommands';
import { evalCommand } from './evalCommand';

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  train: trainCommand,
  complete: completeCommand,
  info: infoCommand,
  serve: serveCommand,
  export: exportCommand, import: importCommand,
  eval: evalCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) throw new UsageError(`unknown command "${name}" (try: ${Object.keys(commands).join(', ')})`);
  return command(rest);
}

const verbose = process.argv.includes('--verbose');
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`\nworkspace-lm: error: ${err.message}\n`);
    if (err instanceof UsageError) process.stderr.write('run `workspace-lm --help` for usage\n');
    else if (verbose && err.stack) process.stderr.write(err.stack + '\n');
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
