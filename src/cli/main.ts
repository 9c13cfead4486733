#!/usr/bin/env node
/**
 * `transcribe`: the gateway's command-line client (package.json `bin`, built to
 * dist/src/cli/main.js). Everything is in run.ts; this file only binds the process to it.
 */
import { runCli } from './run.js';

process.exitCode = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
