/** Ferry's version, from package.json (bundled into images by esbuild). */
import pkg from '../../package.json' with { type: 'json' };

export const FERRY_VERSION: string = pkg.version;
