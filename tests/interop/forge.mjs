#!/usr/bin/env node
// Independent TUF metadata forger for otachain's attack tests. It uses Node's
// crypto and tuf-js' canonical JSON only, never otachain's code, so a bug in
// our signer cannot hide the same bug in our verifier.
//
// Usage:
//   node forge.mjs FILE [--set PATH=VALUE ...] [--del PATH ...]
//        [--clear-sigs] [--sign KEYFILE ...] [--dup-sig] --out FILE
//
// FILE is TUF metadata {"signed":{...},"signatures":[...]}. Steps, in this
// order whatever the order on the command line:
//   1. --set / --del edit "signed" (in command-line order);
//   2. --clear-sigs empties "signatures";
//   3. --sign appends one signature per key over the canonical JSON of the
//      edited "signed" (Ed25519, PKCS#8 PEM "PRIVATE KEY"); an entry with the
//      same keyid is replaced;
//   4. --dup-sig appends a copy of the last signature entry.
// Without --sign and --clear-sigs the old signatures are kept, so editing
// alone yields metadata whose signatures no longer match (a forgery).
//
// PATH: keys separated by "/" (keys may contain dots: meta/snapshot.json/version);
// "~1" stands for "/" and "~0" for "~" inside a key (RFC 6901), a leading "/"
// is optional, and a number indexes an array. Missing objects on the way are
// created. VALUE is parsed as JSON; if that fails it is taken as a string
// (expires=2020-01-01T00:00:00Z). Note: JSON numbers beyond 2^53 lose
// precision in JavaScript; floats cannot be signed (canonical JSON has none).
//
// Output: the edited metadata as compact JSON (JSON.stringify) to --out.
// Exit status: 0 written, 1 error (message on stderr), 2 usage error.

import crypto from 'node:crypto';
import fs from 'node:fs';
import canonicalJson from '@tufjs/canonical-json';

const { canonicalize } = canonicalJson;

const USAGE =
  'usage: node forge.mjs FILE [--set PATH=VALUE ...] [--del PATH ...] ' +
  '[--clear-sigs] [--sign KEYFILE ...] [--dup-sig] --out FILE';

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = { input: null, edits: [], sign: [], clearSigs: false, dupSig: false, out: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--set') {
      const v = value();
      const eq = v.indexOf('=');
      if (eq <= 0) throw new UsageError(`--set wants PATH=VALUE, got ${v}`);
      opts.edits.push({ op: 'set', path: v.slice(0, eq), value: v.slice(eq + 1) });
    } else if (a === '--del') {
      opts.edits.push({ op: 'del', path: value() });
    } else if (a === '--sign') {
      opts.sign.push(value());
    } else if (a === '--clear-sigs') {
      opts.clearSigs = true;
    } else if (a === '--dup-sig') {
      opts.dupSig = true;
    } else if (a === '--out') {
      opts.out = value();
    } else if (a.startsWith('--')) {
      throw new UsageError(`unknown option ${a}`);
    } else if (opts.input === null) {
      opts.input = a;
    } else {
      throw new UsageError(`unexpected argument ${a}`);
    }
  }
  if (opts.input === null) throw new UsageError('missing input FILE');
  if (opts.out === null) throw new UsageError('missing --out FILE');
  return opts;
}

function splitPath(p) {
  const s = p.startsWith('/') ? p.slice(1) : p;
  if (s === '') throw new UsageError(`empty path "${p}"`);
  return s.split('/').map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parseValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function isIndex(container, key) {
  return Array.isArray(container) && /^(0|[1-9][0-9]*)$/.test(key);
}

function applyEdit(signed, edit) {
  const keys = splitPath(edit.path);
  let node = signed;
  for (const k of keys.slice(0, -1)) {
    const key = isIndex(node, k) ? Number(k) : k;
    if (node[key] === undefined || node[key] === null || typeof node[key] !== 'object') {
      if (edit.op === 'del') throw new Error(`--del ${edit.path}: no such path`);
      node[key] = {};
    }
    node = node[key];
  }
  const last = keys[keys.length - 1];
  const key = isIndex(node, last) ? Number(last) : last;
  if (edit.op === 'set') {
    node[key] = parseValue(edit.value);
  } else if (Array.isArray(node) && typeof key === 'number') {
    if (key >= node.length) throw new Error(`--del ${edit.path}: no such index`);
    node.splice(key, 1);
  } else {
    if (!Object.prototype.hasOwnProperty.call(node, key)) {
      throw new Error(`--del ${edit.path}: no such key`);
    }
    delete node[key];
  }
}

// Raw 32-byte Ed25519 public key of a private KeyObject, as 64 hex chars.
function publicHex(privateKey) {
  const jwk = crypto.createPublicKey(privateKey).export({ format: 'jwk' });
  const raw = Buffer.from(jwk.x, 'base64url');
  if (raw.length !== 32) throw new Error('Ed25519 public key is not 32 bytes');
  return raw.toString('hex');
}

// TUF key id: sha256 of the canonical JSON of the public key object.
function keyId(pubHex) {
  const keyObj = { keytype: 'ed25519', keyval: { public: pubHex }, scheme: 'ed25519' };
  return crypto.createHash('sha256').update(canonicalize(keyObj), 'utf8').digest('hex');
}

function loadKey(file) {
  const key = crypto.createPrivateKey(fs.readFileSync(file));
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`${file}: not an Ed25519 private key (${key.asymmetricKeyType})`);
  }
  return key;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const meta = JSON.parse(fs.readFileSync(opts.input, 'utf8'));
  if (meta === null || typeof meta !== 'object' || typeof meta.signed !== 'object' || meta.signed === null) {
    throw new Error(`${opts.input}: not TUF metadata (no "signed" object)`);
  }
  if (!Array.isArray(meta.signatures)) meta.signatures = [];

  for (const edit of opts.edits) applyEdit(meta.signed, edit);
  if (opts.clearSigs) meta.signatures = [];

  if (opts.sign.length > 0) {
    const message = Buffer.from(canonicalize(meta.signed), 'utf8');
    for (const file of opts.sign) {
      const key = loadKey(file);
      const keyid = keyId(publicHex(key));
      const sig = crypto.sign(null, message, key).toString('hex');
      meta.signatures = meta.signatures.filter((s) => s.keyid !== keyid);
      meta.signatures.push({ keyid, sig });
    }
  }

  if (opts.dupSig) {
    if (meta.signatures.length === 0) throw new Error('--dup-sig: no signature to duplicate');
    meta.signatures.push({ ...meta.signatures[meta.signatures.length - 1] });
  }

  fs.writeFileSync(opts.out, JSON.stringify(meta));
  return 0;
}

try {
  process.exit(main());
} catch (err) {
  process.stderr.write(`forge: ${err.message}\n`);
  if (err instanceof UsageError) process.stderr.write(`${USAGE}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
}
