export { createEngine, DockerEngine } from './docker-engine.ts';
export { loadIntoEngine } from './load.ts';
export type {
  BuildEvent,
  BuildOptions,
  ContainerState,
  ContainerSummary,
  Engine,
  EngineInfo,
  ImageInfo,
  ReadOnlyBind,
  RunOptions,
  WaitReadyOptions,
} from './types.ts';
