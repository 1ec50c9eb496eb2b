// The model manager: the models this browser knows with what of each is stored, storage used and
// the quota, persistent storage on request, delete, and another model folder by URL (another
// origin only after the visitor confirms) or from a folder on disk (verified like a download).
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import type { Manifest } from '../engine/types';
import { deleteModel, isLocalModelUrl, listModels, type StoredModel } from '../store/modelCatalog';
import { importModelFolder } from '../store/modelFolder';
import { formatBytes } from '../store/modelStore';

interface Props {
  bundled: { url: string; manifest: Manifest };
  /** The model folder the page uses now. */
  currentUrl: string;
  /** Changes when a load finishes (the list is read again). */
  loadedKey: string;
  /** Loads a model folder (same origin, or confirmed, or local://). */
  onLoad: (url: string) => void;
  /** Asks the visitor before loading from another origin. */
  onLoadOtherOrigin: (url: string) => void;
  onError: (error: unknown) => void;
  onInfo: (message: string) => void;
}

interface StorageFacts {
  usage?: number;
  quota?: number;
  persisted?: boolean;
}

const SOURCE_TEXT: Record<StoredModel['source'], string> = {
  bundled: 'bundled with the app',
  url: 'loaded from a URL',
  folder: 'picked from a folder',
};

export function ModelManager({ bundled, currentUrl, loadedKey, onLoad, onLoadOtherOrigin, onError, onInfo }: Props) {
  const [models, setModels] = useState<StoredModel[]>();
  const [storage, setStorage] = useState<StorageFacts>({});
  const [url, setUrl] = useState('');
  const [busy, setBusy] = useState<string>();
  const folderInput = useRef<HTMLInputElement>(null);

  const refresh = useCallback(async () => {
    try {
      setModels(await listModels(bundled));
      const estimate = await navigator.storage?.estimate?.();
      const persisted = await navigator.storage?.persisted?.();
      setStorage({ usage: estimate?.usage, quota: estimate?.quota, persisted });
    } catch (error) {
      onError(error);
    }
  }, [bundled, onError]);
  useEffect(() => {
    void refresh();
  }, [refresh, loadedKey]);

  // The directory picker is not in React's typings for <input>.
  useEffect(() => {
    folderInput.current?.setAttribute('webkitdirectory', '');
  }, []);

  const persist = async () => {
    try {
      const granted = (await navigator.storage?.persist?.()) ?? false;
      onInfo(
        granted
          ? 'Storage is persistent: the browser will not clear the models and your examples to make room.'
          : 'The browser declined to make storage persistent (it decides from how you use the site); the models stay cached until it needs the space.',
      );
    } catch (error) {
      onError(error);
    }
    void refresh();
  };

  const remove = async (model: StoredModel) => {
    setBusy(`Deleting ${model.manifest.name}…`);
    try {
      await deleteModel(model, models ?? []);
      onInfo(`Deleted the stored files of ${model.manifest.name} ${model.manifest.version}.`);
    } catch (error) {
      onError(error);
    } finally {
      setBusy(undefined);
      void refresh();
    }
  };

  const loadUrl = (event: FormEvent) => {
    event.preventDefault();
    let target: URL;
    try {
      target = new URL(url.trim(), window.location.href);
    } catch {
      onError(new Error(`“${url}” is not a URL.`));
      return;
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      onError(new Error(`A model folder URL starts with http:// or https:// (not ${target.protocol}).`));
      return;
    }
    if (target.origin === window.location.origin) onLoad(target.href);
    else onLoadOtherOrigin(target.href);
  };

  const pickFolder = async (files: File[]) => {
    setBusy('Checking the folder’s files (sha256)…');
    try {
      const { url: localUrl, manifest } = await importModelFolder(files, (path) => setBusy(`Checking ${path} (sha256)…`));
      onInfo(`The folder’s files match its manifest: loading ${manifest.name} ${manifest.version}.`);
      onLoad(localUrl);
    } catch (error) {
      onError(error);
    } finally {
      setBusy(undefined);
      void refresh();
    }
  };

  return (
    <section className="panel models" aria-labelledby="models-heading">
      <h2 id="models-heading">Models in this browser</h2>
      <p data-testid="storage-estimate">
        {storage.usage !== undefined && storage.quota !== undefined
          ? `This site uses ${formatBytes(storage.usage)} of the ${formatBytes(storage.quota)} the browser allows it.`
          : 'This browser does not say how much storage the site uses.'}{' '}
        {storage.persisted ? 'Storage is persistent.' : 'Storage may be cleared when the disk runs low.'}
      </p>
      <div className="row">
        <button type="button" data-testid="persist-storage" disabled={storage.persisted === true} onClick={() => void persist()}>
          Keep storage persistent
        </button>
      </div>
      <table className="model-table" data-testid="model-list">
        <caption className="visually-hidden">Models known to this browser</caption>
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Stored</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {models?.map((model) => {
            const label = `${model.manifest.name} ${model.manifest.version}`;
            const current = model.url === (currentUrl.endsWith('/') ? currentUrl : `${currentUrl}/`);
            return (
              <tr key={model.url} data-testid="model-row" data-model={model.manifest.name} data-current={current}>
                <th scope="row">
                  {label} {current && <span className="badge">in use</span>}
                  <br />
                  <span className="muted">
                    {SOURCE_TEXT[model.source]}
                    {model.source === 'url' && `: ${model.url}`}
                  </span>
                </th>
                <td data-testid="model-stored">
                  {formatBytes(model.cachedBytes)} of {formatBytes(model.totalBytes)}
                  {model.cachedBytes === 0 ? ' (not stored)' : model.cachedBytes < model.totalBytes ? ' (partly)' : ''}
                </td>
                <td>
                  <button type="button" disabled={current} aria-label={`Use ${label}`} data-testid="model-use" onClick={() => onLoad(model.url)}>
                    Use
                  </button>{' '}
                  <button
                    type="button"
                    disabled={model.cachedBytes === 0 || busy !== undefined}
                    aria-label={`Delete the stored files of ${label}`}
                    data-testid="model-delete"
                    onClick={() => void remove(model)}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <form className="row" onSubmit={loadUrl}>
        <label>
          Model folder URL{' '}
          <input
            type="url"
            required
            data-testid="model-url"
            value={url}
            placeholder="https://example.org/models/my-model/"
            onChange={(event) => setUrl(event.target.value)}
          />
        </label>
        <button type="submit" data-testid="model-url-load" disabled={busy !== undefined}>
          Load
        </button>
      </form>
      <div className="row">
        <input
          ref={folderInput}
          type="file"
          multiple
          hidden
          aria-label="Model folder on this computer"
          data-testid="model-folder-input"
          onChange={(event) => {
            const files = Array.from(event.target.files ?? []);
            event.target.value = '';
            if (files.length > 0) void pickFolder(files);
          }}
        />
        <button type="button" data-testid="model-folder" disabled={busy !== undefined} onClick={() => folderInput.current?.click()}>
          Load a model folder from this computer…
        </button>
        {busy && (
          <span className="muted" role="status" data-testid="model-busy">
            {busy}
          </span>
        )}
      </div>
      <p className="hint">
        A model folder holds manifest.json and the files it names; every file is checked against its sha256 before it
        runs. {isLocalModelUrl(currentUrl) ? 'The model in use came from a folder on this computer.' : ''}
      </p>
    </section>
  );
}
