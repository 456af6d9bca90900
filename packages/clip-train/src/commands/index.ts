import type { Command } from 'commander';
import type { CliIO } from '../cli.js';
import { registerForward } from './forward.js';
import { registerDataStats } from './data-stats.js';
import { registerTrainCommands } from './train-commands.js';

/** Each command lives in its own file; this only wires them into the program. */
export function registerCommands(program: Command, io: CliIO): void {
  registerForward(program, io);
  registerDataStats(program, io);
  registerTrainCommands(program, io);
}
