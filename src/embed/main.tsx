// /embed.html: the model in an iframe, driven by the host page through postMessage (controller.ts).
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { startServiceWorker } from '../pwa/register';
import { BUNDLED_MODEL_PATH } from '../store/bundledModel';
import { backendChoice, FlamingoClient } from '../worker/client';
import { EmbedController } from './controller';
import { EmbedView } from './EmbedView';
import './embed.css';

const params = new URLSearchParams(window.location.search);
const base = new URL(import.meta.env.BASE_URL, window.location.href).href;

const client = new FlamingoClient();
const controller = new EmbedController(client, {
  backend: backendChoice(params.get('backend')),
  modelUrl: new URL(params.get('model') ?? `${import.meta.env.BASE_URL}${BUNDLED_MODEL_PATH}`, window.location.href).href,
  base,
});
controller.start();
startServiceWorker({
  after: client.firstLoadSettled,
  beforeReload: () => controller.abandonAll('The embed is reloading to a new version; send the request again after flamingo:ready.'),
});

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <EmbedView controller={controller} />
  </StrictMode>,
);
