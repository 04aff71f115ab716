/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * A thin promise layer over IndexedDB: the browser's only durable store. Every write that
 * matters goes through one transaction and resolves only once that transaction has committed,
 * so "stored" means stored (the chat acknowledges a message only after that).
 */

/** Resolves with a request's result, rejects with its error. */
export function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Resolves once the transaction has committed (not merely once its requests succeeded). */
export function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("The IndexedDB transaction was aborted"));
  });
}

/** Opens (creating or upgrading) a database; `upgrade` creates its stores. */
export function openDatabase(
  name: string,
  version: number,
  upgrade: (db: IDBDatabase) => void,
): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(name, version);
    request.onupgradeneeded = () => upgrade(request.result);
    request.onsuccess = () => {
      const db = request.result;
      // Another tab upgrading the schema must not be blocked by this one.
      db.onversionchange = () => db.close();
      resolve(db);
    };
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error(`The database "${name}" is held by another tab`));
  });
}
