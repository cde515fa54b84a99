#!/usr/bin/env node
// Independent TUF client for otachain's interop tests: tuf-js (pinned in
// package.json) runs the TUF 1.0 client workflow against a repository that
// otachain wrote, with none of otachain's code involved.
//
// Usage:
//   node tufjs-client.mjs --metadata-url URL --targets-url URL
//        --trusted-root FILE --cache DIR [--target PATH --out FILE]
//
// The cache directory is tuf-js' metadataDir. When it holds no root.json yet,
// the trusted root is copied there first; otherwise the cached root (possibly
// rotated by an earlier run) is what the client trusts.
//
// Output: exactly one JSON line on stdout.
//   success: {"ok":true,"root_version":N,"timestamp_version":N,
//             "snapshot_version":N,"targets_version":N
//             [,"target":{"path":..,"length":..,"hashes":{..},"custom":{..}},
//              "out":FILE]}
//   failure: {"ok":false,"error":"<error class name>","message":"..."}
// Exit status: 0 success, 1 the update was refused or failed, 2 usage error.

import fs from 'node:fs';
import path from 'node:path';
import tufjs from 'tuf-js';

const { Updater } = tufjs;

class UsageError extends Error {}
class TargetNotFoundError extends Error {}

const USAGE =
  'usage: node tufjs-client.mjs --metadata-url URL --targets-url URL ' +
  '--trusted-root FILE --cache DIR [--target PATH --out FILE]';

function parseArgs(argv) {
  const known = new Set([
    '--metadata-url',
    '--targets-url',
    '--trusted-root',
    '--cache',
    '--target',
    '--out',
  ]);
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    if (!known.has(name)) throw new UsageError(`unknown argument ${name}; ${USAGE}`);
    if (i + 1 >= argv.length) throw new UsageError(`${name} needs a value; ${USAGE}`);
    opts[name.slice(2)] = argv[++i];
  }
  for (const req of ['metadata-url', 'targets-url', 'trusted-root', 'cache']) {
    if (!opts[req]) throw new UsageError(`--${req} is required; ${USAGE}`);
  }
  if (Boolean(opts.target) !== Boolean(opts.out)) {
    throw new UsageError(`--target and --out go together; ${USAGE}`);
  }
  return opts;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function errorName(err) {
  if (err && err.constructor && err.constructor.name) return err.constructor.name;
  return typeof err;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));

  const cache = path.resolve(opts.cache);
  fs.mkdirSync(cache, { recursive: true });
  const cachedRoot = path.join(cache, 'root.json');
  if (!fs.existsSync(cachedRoot)) {
    fs.copyFileSync(path.resolve(opts['trusted-root']), cachedRoot);
  }
  const targetDir = opts.out ? path.dirname(path.resolve(opts.out)) : undefined;

  const updater = new Updater({
    metadataDir: cache,
    metadataBaseUrl: opts['metadata-url'],
    targetBaseUrl: opts['targets-url'],
    targetDir,
    config: {
      // tuf-js' default is 256 too; stated so that a long rotation chain
      // (the 50-rotation test) never depends on a library default.
      maxRootRotations: 256,
      // No retries: a refused or broken response must fail at once, so that
      // attack tests are fast and deterministic.
      fetchRetry: 0,
    },
  });

  await updater.refresh();

  // trustedSet is tuf-js' verified state after refresh(); reading it is the
  // only way to report which versions the client ended up trusting.
  const ts = updater.trustedSet;
  const result = {
    ok: true,
    root_version: ts.root.signed.version,
    timestamp_version: ts.timestamp ? ts.timestamp.signed.version : null,
    snapshot_version: ts.snapshot ? ts.snapshot.signed.version : null,
    targets_version: ts.targets ? ts.targets.signed.version : null,
  };

  if (opts.target) {
    const info = await updater.getTargetInfo(opts.target);
    if (!info) throw new TargetNotFoundError(`target ${opts.target} is not in signed targets metadata`);
    const out = path.resolve(opts.out);
    await updater.downloadTarget(info, out);
    result.target = {
      path: info.path,
      length: info.length,
      hashes: info.hashes,
      custom: info.custom ?? null,
    };
    result.out = out;
  }
  emit(result);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    emit({ ok: false, error: errorName(err), message: String(err && err.message ? err.message : err) });
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
