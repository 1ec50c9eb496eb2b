import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { UpdatePrompt } from '../pwa/UpdatePrompt';
import { startServiceWorker } from '../pwa/register';
import { FlamingoClient } from '../worker/client';
import { App, settingsFromUrl } from './App';
import './styles.css';

// One worker for the page's lifetime (created outside React so that StrictMode's double
// rendering cannot start a second one).
const client = new FlamingoClient();
// ONNX Runtime starts in the worker while React renders; the model's load reuses it.
client.prepare(settingsFromUrl().backend);

// The offline app installs once the model is up: the precache download waits for the start-up.
startServiceWorker({ after: client.firstLoadSettled });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App client={client} />
    <UpdatePrompt />
  </StrictMode>,
);
