// The model that ships with the app. Its manifest is part of the bundle (read from
// public/models/emojiworld/manifest.json at build time by a plugin in vite.config.ts), so a warm
// visit reads every model file from IndexedDB without a single network request.
import manifestJson from 'virtual:flamingo-web/bundled-manifest';
import { validateManifest } from '../engine/manifest';

/** The bundled model folder, relative to the app's base URL. */
export const BUNDLED_MODEL_PATH = 'models/emojiworld/';

export const bundledManifest = validateManifest(manifestJson);
