#!/usr/bin/env node
// ort_run.js: runs an ONNX model with ONNX Runtime (CPU, onnxruntime-node)
// and prints its median latency as JSON on stdout.
//
//   node bench/ort_run.js MODEL.onnx INPUT [RUNS [THREADS]]
//       [--runs N] [--threads T] [--warmup W] [--shape 1,3,224,224] [--output OUT.npy]
//
// INPUT is a .npy file (float32, C order), or a raw little-endian float32
// file with --shape. It feeds the model's first input. The session uses
// intraOpNumThreads = THREADS (default 2), interOpNumThreads 1, execution
// mode sequential, graphOptimizationLevel 'all'. After WARMUP (default 5)
// runs it times RUNS (default 20) runs of session.run and prints
//   {"median_ms": .., "min_ms": .., "runs": .., "threads": .., ...}
// --output writes the first output as a float32 .npy (for comparisons).
//
// onnxruntime-node is looked up in $QNT_ORT_DIR/node_modules, then in
// <repo>/build/ort/node_modules (where scripts/ort-setup.sh installs it by
// default), then in node's usual paths. Exit status: 0, 1 on an error (message on stderr), 2 when
// onnxruntime-node is not installed.
'use strict';

const fs = require('fs');
const path = require('path');

function usage(msg) {
  process.stderr.write(`ort_run.js: ${msg}\nusage: node bench/ort_run.js MODEL.onnx INPUT ` +
    '[RUNS [THREADS]] [--runs N] [--threads T] [--warmup W] [--shape D,D,..] [--output OUT.npy]\n');
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { runs: 20, threads: 2, warmup: 5, shape: null, output: null };
  const pos = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(a);
    if (!m) { pos.push(a); continue; }
    const key = m[1];
    if (!(key in opts)) usage(`unknown option ${a}`);
    const val = m[2] !== undefined ? m[2] : argv[++i];
    if (val === undefined) usage(`${a} needs a value`);
    opts[key] = val;
  }
  if (pos.length < 2 || pos.length > 4) usage('expected MODEL.onnx INPUT [RUNS [THREADS]]');
  [opts.model, opts.input] = pos;
  if (pos[2] !== undefined) opts.runs = pos[2];
  if (pos[3] !== undefined) opts.threads = pos[3];
  for (const k of ['runs', 'threads', 'warmup']) {
    const v = Number(opts[k]);
    if (!Number.isInteger(v) || v < (k === 'warmup' ? 0 : 1)) usage(`bad --${k} ${opts[k]}`);
    opts[k] = v;
  }
  if (opts.shape !== null) {
    opts.shape = String(opts.shape).split(/[,x]/).map(Number);
    if (opts.shape.some((d) => !Number.isInteger(d) || d < 0)) usage('bad --shape');
  }
  return opts;
}

function loadOrt() {
  const dirs = [];
  if (process.env.QNT_ORT_DIR) dirs.push(process.env.QNT_ORT_DIR);
  dirs.push(path.join(__dirname, '..', 'build', 'ort'));
  for (const d of dirs) {
    const p = path.join(d, 'node_modules', 'onnxruntime-node');
    if (fs.existsSync(p)) return require(p);
  }
  try {
    return require('onnxruntime-node');
  } catch (e) {
    process.stderr.write('ort_run.js: onnxruntime-node is not installed: run ' +
      `scripts/ort-setup.sh (looked in ${dirs.join(', ')})\n`);
    process.exit(2);
  }
}

// A float32 array and its shape from a .npy file (version 1-3, '<f4', C order).
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') {
    throw new Error(`${file}: not a .npy file`);
  }
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${file}: bad .npy header ${header}`);
  if (descr[1] !== '<f4' && descr[1] !== '=f4') {
    throw new Error(`${file}: dtype ${descr[1]}, expected float32 ('<f4')`);
  }
  if (fortran[1] === 'True') throw new Error(`${file}: Fortran order is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  return { data: floatsOf(buf.subarray(start + hlen), file), dims };
}

function floatsOf(bytes, file) {
  if (bytes.length % 4) throw new Error(`${file}: ${bytes.length} bytes is not float32 data`);
  const out = new Float32Array(bytes.length / 4);
  Buffer.from(out.buffer).set(bytes); // copy: the Buffer's offset need not be aligned
  return out;
}

function writeNpy(file, data, dims) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')}` +
    `${dims.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  let input;
  if (opts.input.endsWith('.npy')) {
    input = readNpy(opts.input);
    if (opts.shape) {
      const want = opts.shape.reduce((a, b) => a * b, 1);
      if (want !== input.data.length) throw new Error(`--shape ${opts.shape} does not match ${opts.input}`);
      input.dims = opts.shape;
    }
  } else {
    if (!opts.shape) usage('a raw float32 input needs --shape');
    input = { data: floatsOf(fs.readFileSync(opts.input), opts.input), dims: opts.shape };
    const want = opts.shape.reduce((a, b) => a * b, 1);
    if (want !== input.data.length) {
      throw new Error(`${opts.input}: ${input.data.length} floats, --shape needs ${want}`);
    }
  }
  const session = await ort.InferenceSession.create(opts.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];
  const feeds = { [inName]: new ort.Tensor('float32', input.data, input.dims) };
  let result;
  for (let i = 0; i < opts.warmup; i++) result = await session.run(feeds);
  const times = [];
  for (let i = 0; i < opts.runs; i++) {
    const t0 = process.hrtime.bigint();
    result = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const out = result[outName];
  if (opts.output) {
    if (out.type !== 'float32') throw new Error(`output ${outName} is ${out.type}, not float32`);
    writeNpy(opts.output, out.data, out.dims);
  }
  let version = null;
  try {
    version = ort.env.versions.node || ort.env.versions.common || null;
  } catch (e) { /* older packages: no env.versions */ }
  process.stdout.write(JSON.stringify({
    median_ms: median(times),
    min_ms: Math.min(...times),
    runs: opts.runs,
    warmup: opts.warmup,
    threads: opts.threads,
    input: inName,
    input_shape: input.dims,
    output: outName,
    output_shape: out.dims,
    onnxruntime: version,
  }) + '\n');
  if (typeof session.release === 'function') await session.release();
}

main().catch((e) => {
  process.stderr.write(`ort_run.js: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});
