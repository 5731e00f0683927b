/**
 * The default reference of the gateway image: `ferry gateway-image` builds it (src/image/gateway.ts), and it is
 * the image that runs `ferry gateway` in a cluster (src/k8s renders it). Here because the image module that
 * builds it and the Kubernetes module that names it import neither each other. (Its own file, not version.ts:
 * every bundle that needs the version would otherwise carry this line too.)
 */
import { FERRY_VERSION } from './version.ts';

export const GATEWAY_IMAGE_NAME = 'ferry-gateway';

/** `ferry-gateway:<Ferry's version>`, e.g. ferry-gateway:0.1.0. */
export const DEFAULT_GATEWAY_IMAGE = `${GATEWAY_IMAGE_NAME}:${FERRY_VERSION}`;
