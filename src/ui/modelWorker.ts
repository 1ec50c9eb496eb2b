// The studio's one model worker, for the page's lifetime (created outside React so that
// StrictMode's double rendering cannot start a second one). main.tsx imports this module first:
// ES modules are evaluated in import order, so the worker starts, and ONNX Runtime in it
// (`prepare`), before React and the rest of the app are evaluated, not after.
import { backendChoice, FlamingoClient } from '../worker/client';

export const client = new FlamingoClient();
client.prepare(backendChoice(new URLSearchParams(window.location.search).get('backend')));
