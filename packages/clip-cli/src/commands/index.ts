import type { Command } from 'commander';
import type { CliIO } from '../cli.js';
import { registerForward } from './forward.js';
import { registerDataStats } from './data-stats.js';
import { registerTrain } from './train.js';
import { registerEval } from './eval.js';
import { registerZeroshot } from './zeroshot.js';
import { registerProbe } from './probe.js';
import { registerEmbed } from './embed.js';
import { registerDemo } from './demo.js';

/** Each command lives in its own file; this only wires them into the program. */
export function registerCommands(program: Command, io: CliIO): void {
  registerForward(program, io);
  registerDataStats(program, io);
  registerTrain(program, io);
  registerEval(program, io);
  registerZeroshot(program, io);
  registerProbe(program, io);
  registerEmbed(program, io);
  registerDemo(program, io);
}
