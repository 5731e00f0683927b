export { createEngine, DockerEngine } from './docker-engine.ts';
export { loadIntoEngine } from './load.ts';
export type {
  BuildEvent,
  BuildOptions,
  ContainerEvent,
  ContainerEventOptions,
  ContainerLogLine,
  ContainerLogOptions,
  ContainerState,
  ContainerSummary,
  Engine,
  EngineInfo,
  ImageInfo,
  ReadOnlyBind,
  RunOptions,
  WaitReadyOptions,
} from './types.ts';
