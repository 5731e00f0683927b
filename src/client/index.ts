export { type Example, type ExampleResult, replayExamples } from './examples.ts';
export { errorFromResponse, type InferOptions, OipClient, type OipClientOptions } from './oip-client.ts';
