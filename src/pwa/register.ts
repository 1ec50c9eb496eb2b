// Registers the service worker (src/sw.ts) and tells the page about updates. registerType is
// "prompt": a new version waits until the user accepts it (UpdatePrompt), and when a new worker
// takes over, every open page of the old version reloads, so a page of one version never runs
// with files (the ONNX Runtime glue a worker imports later, say) of another.
import { registerSW } from 'virtual:pwa-register';

export interface PwaState {
  /** A new version is installed and waiting for the user's go-ahead. */
  needRefresh: boolean;
  /** The app shell is precached: the next visit works offline. */
  offlineReady: boolean;
}

/** Browsers look for a new version on navigation; a page left open checks every hour as well. */
const UPDATE_CHECK_MS = 60 * 60 * 1000;

let state: PwaState = { needRefresh: false, offlineReady: false };
const listeners = new Set<() => void>();
let updateServiceWorker: (() => Promise<void>) | undefined;
let started = false;

function set(partial: Partial<PwaState>): void {
  state = { ...state, ...partial };
  for (const listener of listeners) listener();
}

export const pwa = {
  getState: (): PwaState => state,
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  /** Activates the waiting version; the page reloads when it takes over. */
  async update(): Promise<void> {
    await updateServiceWorker?.();
  },
  dismiss(key: keyof PwaState): void {
    set({ [key]: false });
  },
};

/** The longest a page's start-up may hold back the service worker's registration. */
const REGISTER_AFTER_AT_MOST_MS = 30_000;

/**
 * Once per page. `beforeReload` runs just before a version change reloads the page (the embed
 * tells its hosts that their pending requests end there). `after`: registration waits for it (at
 * most REGISTER_AFTER_AT_MOST_MS). On a first visit, installing the worker downloads and stores the
 * whole precache (~40 MB, both ONNX Runtime builds), which on a small machine competes with the
 * model's own start for the cores and the disk; the pages pass the model's first load here.
 */
export function startServiceWorker(options: { beforeReload?: () => void; after?: Promise<unknown> } = {}): void {
  if (started || !('serviceWorker' in navigator)) return;
  started = true;
  const cap = new Promise((resolve) => setTimeout(resolve, REGISTER_AFTER_AT_MOST_MS));
  void Promise.race([options.after?.catch(() => undefined), cap]).then(() => register(options));
}

function register(options: { beforeReload?: () => void }): void {
  let controlled = navigator.serviceWorker.controller !== null;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // The first worker claiming a fresh page is the same version as the page: no reload.
    if (controlled) {
      options.beforeReload?.();
      window.location.reload();
    }
    controlled = true;
  });

  updateServiceWorker = registerSW({
    onNeedRefresh: () => set({ needRefresh: true }),
    onOfflineReady: () => set({ offlineReady: true }),
    // The controllerchange listener above reloads, in this tab and in every other one.
    onNeedReload: () => {},
    onRegisteredSW(_url, registration) {
      if (registration) setInterval(() => void registration.update().catch(() => undefined), UPDATE_CHECK_MS);
    },
    onRegisterError: (error: unknown) => console.warn('The service worker could not be registered: no offline use.', error),
  });
}
