#!/usr/bin/env node
// Entry point of the CLI (`npx flamingo-web generate|eval|bench`): runs the TypeScript sources
// through tsx, so the CLI and the browser worker share the same engine code without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
