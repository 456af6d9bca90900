#!/usr/bin/env node
// The `clip` executable. A committed shim (not dist/cli.js itself) so npm links the bin at install
// time, before the package is built.
import { runCli } from '../dist/cli.js';

process.exitCode = await runCli(process.argv.slice(2));
