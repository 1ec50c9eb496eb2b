// Modules made by plugins in vite.config.ts.
declare module 'virtual:flamingo-web/bundled-manifest' {
  /** The bundled model's manifest.json, as parsed JSON (validated by the importer). */
  const manifest: unknown;
  export default manifest;
}
