#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { ClipError } from '@clip-ts/core';
import { registerCommands } from './commands/index.js';

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIO: CliIO = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

/** The `clip` program. Commands write results to io.stdout and progress to io.stderr. */
export function buildProgram(io: CliIO = defaultIO): Command {
  const program = new Command('clip')
    .description('clip-ts: train, evaluate and run CLIP models on TensorFlow.js')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError();
  registerCommands(program, io);
  return program;
}

/**
 * Run the CLI in-process and return the exit code: 0 ok, 2 for bad input (a ClipError or a usage
 * error), 1 for an unexpected failure. Never calls process.exit, so tests can drive it.
 */
export async function runCli(argv: string[], io: CliIO = defaultIO): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof ClipError) {
      io.stderr(`error: ${err.message}\n`);
      return 2;
    }
    io.stderr(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
