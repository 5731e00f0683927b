/** The ferry.yaml spec module: schema, loading (parse -> validate -> complete), defaults, units, init helpers. */

export { completeSpec } from './complete.ts';
export { DEFAULTS, SPEC_FILE_NAME } from './defaults.ts';
export { DURATION_UNITS, formatDuration, parseDuration } from './duration.ts';
export {
  type InitialSpecOptions,
  initModelName,
  modelNameFromFile,
  renderInitialSpec,
  sampleRequest,
} from './init.ts';
export {
  type ExampleFileRef,
  formatSpecProblems,
  loadSpec,
  type ParseResult,
  parseServingOverrides,
  parseSpec,
  SERVING_OVERRIDES_ENV,
  type SpecOverrides,
  servingOverrideProblems,
} from './load.ts';
export { formatBytes, parseBytes, parseCpu } from './quantity.ts';
export {
  FORMATS,
  HANDLER_EXTENSIONS,
  MODEL_NAME_RE,
  type RawSpec,
  RawSpecSchema,
  relativePathProblem,
  validateDocument,
} from './schema.ts';
export * from './types.ts';
export { SpecValueError } from './value-error.ts';
