// Type declarations of cairn-web (src/index.js).

export type Bytes = Uint8Array | ArrayBuffer | ArrayBufferView | string;
export type Backend = 'opfs' | 'indexeddb' | 'memory';

export interface OpenOptions {
  /** Where pages live: OPFS sync access handles (default), IndexedDB, or memory. */
  backend?: Backend;
  /** 'sync' (default): durable when the Promise resolves; 'lazy': cheaper commits. */
  durability?: 'sync' | 'lazy';
  /** Page size of a new database (4096..65536, power of two). */
  pageSize?: number;
  /** The engine's page cache bound in pages (default 4096). */
  cachePages?: number;
  /** Checkpoint when the pages commits left in memory or the log pass this many MiB (default 64). */
  checkpointMiB?: number;
  /**
   * IndexedDB store: 'wait' (default where the browser has JSPI) keeps a bounded chunk cache and
   * suspends the engine while IndexedDB reads or commits; 'preload' keeps every chunk in memory.
   */
  idbMode?: 'wait' | 'preload';
  /** IndexedDB store: chunk cache bound in MiB in 'wait' mode (default 16). */
  idbCacheMiB?: number;
  /** URL of the engine module (default: ../dist/cairn-engine.mjs beside this file). */
  engineUrl?: string | URL;
  /** URL of the Worker script (default: ./worker.js beside this file). */
  workerUrl?: string | URL;
}

export interface RangeOptions {
  gt?: Bytes;
  gte?: Bytes;
  lt?: Bytes;
  lte?: Bytes;
  /** Only keys starting with prefix (overrides gt/gte/lt/lte). */
  prefix?: Bytes;
  reverse?: boolean;
  limit?: number;
  cf?: ColumnFamily;
}

export type Entry = [key: Uint8Array, value: Uint8Array];

export type BatchOp =
  | { type: 'put'; key: Bytes; value: Bytes; cf?: ColumnFamily }
  | { type: 'del'; key: Bytes; cf?: ColumnFamily };

export declare const codes: {
  CAIRN_NOTFOUND: -1; CAIRN_EXISTS: -2; CAIRN_BUSY: -3; CAIRN_CORRUPT: -4; CAIRN_IO: -5;
  CAIRN_NOSPC: -6; CAIRN_NOMEM: -7; CAIRN_INVALID: -8; CAIRN_READONLY: -9; CAIRN_TOOBIG: -10;
  CAIRN_BADTXN: -11; CAIRN_NOTADB: -12; CAIRN_VERSION: -13; CAIRN_INUSE: -14; CAIRN_NOTSUPP: -15;
};

/** Every rejection: the cairn status code, its name, and the detailed message. */
export declare class CairnError extends Error {
  readonly code: number;
  readonly codeName: keyof typeof codes;
}

interface Reader {
  get(key: Bytes, options?: { cf?: ColumnFamily }): Promise<Uint8Array | undefined>;
  iterate(options?: RangeOptions): AsyncGenerator<Entry, void, undefined>;
  keys(options?: RangeOptions): AsyncGenerator<Uint8Array, void, undefined>;
}

export declare class Database implements Reader {
  readonly name: string;
  readonly backend: Backend;
  get(key: Bytes, options?: { cf?: ColumnFamily }): Promise<Uint8Array | undefined>;
  iterate(options?: RangeOptions): AsyncGenerator<Entry, void, undefined>;
  keys(options?: RangeOptions): AsyncGenerator<Uint8Array, void, undefined>;
  put(key: Bytes, value: Bytes, options?: { cf?: ColumnFamily }): Promise<void>;
  /** Resolves true if the key existed. */
  del(key: Bytes, options?: { cf?: ColumnFamily }): Promise<boolean>;
  /** All operations commit together, or none does. */
  batch(ops: BatchOp[]): Promise<void>;
  cf(name: string, options?: { create?: boolean }): Promise<ColumnFamily>;
  dropCf(name: string): Promise<void>;
  listCfs(): Promise<string[]>;
  transaction(mode: 'readwrite'): Promise<WriteTransaction>;
  transaction(mode?: 'readonly'): Promise<ReadTransaction>;
  stats(): Promise<Record<string, unknown> & { backend: Backend; name: string }>;
  check(): Promise<true>;
  /** The whole database as bytes: a file the native `cairn` tool opens. */
  export(): Promise<Uint8Array>;
  /** Replace the content with the bytes of a cairn database file (validated first). */
  import(bytes: Bytes): Promise<void>;
  close(): Promise<void>;
}

export declare class ColumnFamily implements Reader {
  readonly name: string;
  readonly id: number;
  get(key: Bytes): Promise<Uint8Array | undefined>;
  iterate(options?: RangeOptions): AsyncGenerator<Entry, void, undefined>;
  keys(options?: RangeOptions): AsyncGenerator<Uint8Array, void, undefined>;
  put(key: Bytes, value: Bytes): Promise<void>;
  del(key: Bytes): Promise<boolean>;
}

export declare class ReadTransaction implements Reader {
  readonly mode: 'readonly' | 'readwrite';
  get(key: Bytes, options?: { cf?: ColumnFamily }): Promise<Uint8Array | undefined>;
  iterate(options?: RangeOptions): AsyncGenerator<Entry, void, undefined>;
  keys(options?: RangeOptions): AsyncGenerator<Uint8Array, void, undefined>;
  listCfs(): Promise<string[]>;
  cf(name: string): Promise<ColumnFamily>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export declare class WriteTransaction extends ReadTransaction {
  readonly mode: 'readwrite';
  put(key: Bytes, value: Bytes, options?: { cf?: ColumnFamily }): Promise<void>;
  del(key: Bytes, options?: { cf?: ColumnFamily }): Promise<boolean>;
  batch(ops: BatchOp[]): Promise<void>;
  cf(name: string, options?: { create?: boolean }): Promise<ColumnFamily>;
}

export type Transaction = ReadTransaction | WriteTransaction;

/** Open (creating if needed) the database `name` of this origin in its own Worker. */
export declare function open(name: string, options?: OpenOptions): Promise<Database>;
export declare function toBytes(x: Bytes, what?: string): Uint8Array;
