// First: the model worker starts before the modules below are evaluated (modelWorker.ts).
import { client } from './modelWorker';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { UpdatePrompt } from '../pwa/UpdatePrompt';
import { startServiceWorker } from '../pwa/register';
import { App } from './App';
import './styles.css';

// The offline app installs once the model is up: the precache download waits for the start-up.
startServiceWorker({ after: client.firstLoadSettled });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App client={client} />
    <UpdatePrompt />
  </StrictMode>,
);
