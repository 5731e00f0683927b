export { errorFromResponse, type InferOptions, OipClient, type OipClientOptions } from './oip-client.ts';
