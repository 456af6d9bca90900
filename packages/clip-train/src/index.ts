export { buildProgram, runCli } from './cli.js';
export type { CliIO } from './cli.js';
