// "A new version is ready" and "works offline" notices, for the studio and the embed alike.
import { useSyncExternalStore } from 'react';
import { pwa } from './register';
import './pwa.css';

export function UpdatePrompt({ compact = false }: { compact?: boolean }) {
  const { needRefresh, offlineReady } = useSyncExternalStore(pwa.subscribe, pwa.getState);
  return (
    <div className={`pwa-notices${compact ? ' compact' : ''}`} role="status" aria-live="polite">
      {needRefresh && (
        <p className="pwa-notice" data-testid="update-available">
          A new version of flamingo-web is ready.{' '}
          <button type="button" data-testid="update-now" onClick={() => void pwa.update()}>
            Update and reload
          </button>{' '}
          <button type="button" onClick={() => pwa.dismiss('needRefresh')}>
            Not now
          </button>
        </p>
      )}
      {offlineReady && !needRefresh && !compact && (
        <p className="pwa-notice" data-testid="offline-ready">
          flamingo-web now works offline: the app is stored in this browser.{' '}
          <button type="button" onClick={() => pwa.dismiss('offlineReady')}>
            OK
          </button>
        </p>
      )}
    </div>
  );
}
