#!/usr/bin/env node
// Entry point: runs the TypeScript CLI through tsx's loader so that worker threads and
// user handler modules (.ts) load the same way in development and inside images.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
