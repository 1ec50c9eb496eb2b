// The model that ships with the app. Its manifest is part of the bundle (imported at build time),
// so a warm visit reads every model file from IndexedDB without a single network request.
import manifestJson from '../../public/models/emojiworld/manifest.json';
import { parseManifest } from './manifest';

/** The bundled model folder, relative to the app's base URL. */
export const BUNDLED_MODEL_PATH = 'models/emojiworld/';

export const bundledManifest = parseManifest(manifestJson, 'the bundled manifest.json');
