/**
 * The first import of the image's entry (entry.ts), for its side effect: the model's first inference worker
 * starts before the server's other modules run (preload.ts). The model directory is read as entry.ts reads it.
 */
import { preloadWorker } from './preload.ts';

preloadWorker(process.env.FERRY_MODEL_DIR || '/app/model');
