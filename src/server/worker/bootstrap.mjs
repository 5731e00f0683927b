// Worker entry: registers tsx in this thread (loader hooks are per thread), then runs the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./inference-worker.ts');
