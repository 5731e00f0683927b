export type {
  Backend,
  BackendLoadOptions,
  HandlerContext,
  HandlerModule,
  HandlerOnnxSession,
  NamedTensors,
} from './backends/types.ts';
export { DataPlane } from './data-plane.ts';
export { createHttpApp } from './http-app.ts';
export { ServerMetrics } from './metrics.ts';
export type { ModelVersion } from './model-version.ts';
export { ModelRepository } from './repository.ts';
export { createLogger, type RunningServer, type ServerOptions, startServer } from './server.ts';
