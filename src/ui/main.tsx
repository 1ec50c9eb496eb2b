import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { UpdatePrompt } from '../pwa/UpdatePrompt';
import { startServiceWorker } from '../pwa/register';
import { FlamingoClient } from '../worker/client';
import { App } from './App';
import './styles.css';

// One worker for the page's lifetime (created outside React so that StrictMode's double
// rendering cannot start a second one).
const client = new FlamingoClient();

startServiceWorker();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App client={client} />
    <UpdatePrompt />
  </StrictMode>,
);
