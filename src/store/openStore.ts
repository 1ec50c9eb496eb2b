// An IndexedDB object store (idb-keyval) that says so when IndexedDB cannot be used here at all
// (site storage blocked, some private modes): the first use opens it, and a failure to open is a
// StorageUnavailable, told apart from a failed read or write (quota, a damaged entry).
import { createStore, get, type UseStore } from 'idb-keyval';
import { FlamingoError } from '../engine/types';

export class StorageUnavailable extends FlamingoError {}

/** A function giving the store once it opened; opening is tried again on the next call after a failure. */
export function openStore(database: string, storeName: string): () => Promise<UseStore> {
  let opened: Promise<UseStore> | undefined;
  return () => {
    opened ??= (async () => {
      const store = createStore(database, storeName);
      try {
        await get('probe', store); // idb-keyval opens the database on first use
      } catch (cause) {
        throw new StorageUnavailable("The browser's storage (IndexedDB) is not available here.", { cause });
      }
      return store;
    })();
    opened.catch(() => (opened = undefined));
    return opened;
  };
}
