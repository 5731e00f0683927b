// Worker entry when Ferry runs from source (tests, development; worker-url.ts picks it): registers tsx in this
// thread (loader hooks are per thread), then runs the TypeScript worker. The compiled CLI and images start a
// compiled worker instead, without tsx.
import { register } from 'tsx/esm/api';

register();
await import('./inference-worker.ts');
