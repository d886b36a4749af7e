/** The shared library: bundle format, manifest, signing, hashing, versions and errors. */
export * from './errors.js';
export * from './manifest.js';
export * from './version.js';
export * from './signing.js';
export * from './hashing.js';
export * from './byte-source.js';
export * from './tar-reader.js';
export * from './bundle-reader.js';
export * from './bundle-writer.js';
export * from './tree.js';
export * from './tree-pack.js';
export * from './inflate.js';
export * from './verify.js';
export * from './protocol.js';
export * from './cli.js';
export * from './strict-json.js';
export * from './inspect.js';
