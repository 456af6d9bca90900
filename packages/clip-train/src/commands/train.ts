import type { Command } from 'commander';
import type { CliIO } from '../cli.js';

// Placeholder until its issue lands: registers no command yet.
export function registerTrain(_program: Command, _io: CliIO): void {}
