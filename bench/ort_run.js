#!/usr/bin/env node
// ort_run.js: runs an ONNX model with ONNX Runtime (CPU, onnxruntime-node)
// and prints its median latency as JSON on stdout.
//
//   node bench/ort_run.js MODEL.onnx INPUT [RUNS [THREADS]]
//       [--runs N] [--threads T] [--warmup W] [--shape 1,3,224,224] [--output OUT.npy]
//       [--output-dir DIR] [--optimized OPT.onnx]
//
// INPUT is a .npy file (float32, C order), or a raw little-endian float32
// file with --shape: it feeds the model's first input. Or INPUT is a
// directory with input_0.npy, input_1.npy, ...: one per model input, in the
// model's order (float32, int64, int32, bool, uint8 or int8). The session uses
// intraOpNumThreads = THREADS (default 2), interOpNumThreads 1, execution
// mode sequential, graphOptimizationLevel 'all'. After WARMUP (default 5)
// runs it times RUNS (default 20) runs of session.run and prints
//   {"median_ms": .., "min_ms": .., "runs": .., "threads": .., ...}
// --output writes the first output as a float32 .npy (for comparisons);
// --output-dir writes every output as DIR/output_<i>.npy (their own dtype).
// --optimized writes the graph ORT runs after its optimizations (which ops
// it fused: QLinearConv, ...) to OPT.onnx.
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
    '[RUNS [THREADS]] [--runs N] [--threads T] [--warmup W] [--shape D,D,..] [--output OUT.npy] ' +
    '[--output-dir DIR] [--optimized OPT.onnx]\n');
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { runs: 20, threads: 2, warmup: 5, shape: null, output: null,
    'output-dir': null, optimized: null };
  const pos = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
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

// .npy element types: descr -> [ORT tensor type, typed array, bytes per element].
const NPY_TYPES = {
  '<f4': ['float32', Float32Array, 4], '<i8': ['int64', BigInt64Array, 8],
  '<i4': ['int32', Int32Array, 4], '|b1': ['bool', Uint8Array, 1],
  '|u1': ['uint8', Uint8Array, 1], '|i1': ['int8', Int8Array, 1],
};
const NPY_DESCR = Object.fromEntries(Object.entries(NPY_TYPES).map(([d, [t]]) => [t, d]));

// An array, its ORT type and its shape from a .npy file (version 1-3, C
// order); only float32 unless `anyType`.
function readNpy(file, anyType) {
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
  const key = descr[1].replace(/^=/, '<');
  if (!(key in NPY_TYPES) || (!anyType && key !== '<f4')) {
    throw new Error(`${file}: dtype ${descr[1]}, expected ` +
      (anyType ? Object.keys(NPY_TYPES).join(' ') : "float32 ('<f4')"));
  }
  if (fortran[1] === 'True') throw new Error(`${file}: Fortran order is not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const [type, Typed, size] = NPY_TYPES[key];
  const bytes = buf.subarray(start + hlen);
  if (bytes.length !== dims.reduce((a, b) => a * b, 1) * size) {
    throw new Error(`${file}: ${bytes.length} data bytes do not match the shape (${dims})`);
  }
  const data = new Typed(bytes.length / size);
  Buffer.from(data.buffer).set(bytes); // copy: the Buffer's offset need not be aligned
  return { data, dims, type };
}

function floatsOf(bytes, file) {
  if (bytes.length % 4) throw new Error(`${file}: ${bytes.length} bytes is not float32 data`);
  const out = new Float32Array(bytes.length / 4);
  Buffer.from(out.buffer).set(bytes); // copy: the Buffer's offset need not be aligned
  return out;
}

function writeNpy(file, data, dims, type = 'float32') {
  if (!(type in NPY_DESCR)) throw new Error(`${file}: cannot write ${type} as .npy`);
  let header = `{'descr': '${NPY_DESCR[type]}', 'fortran_order': False, 'shape': (` +
    `${dims.join(', ')}${dims.length === 1 ? ',' : ''}), }`;
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
  const session = await ort.InferenceSession.create(opts.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    ...(opts.optimized ? { optimizedModelFilePath: opts.optimized } : {}),
  });
  const inName = session.inputNames[0];
  const outName = session.outputNames[0];
  const feeds = {};
  let input;
  if (fs.existsSync(opts.input) && fs.statSync(opts.input).isDirectory()) {
    session.inputNames.forEach((name, i) => {
      const t = readNpy(path.join(opts.input, `input_${i}.npy`), true);
      feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
      if (i === 0) input = t;
    });
  } else if (opts.input.endsWith('.npy')) {
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
  if (!(inName in feeds)) feeds[inName] = new ort.Tensor('float32', input.data, input.dims);
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
  if (opts['output-dir']) {
    fs.mkdirSync(opts['output-dir'], { recursive: true });
    session.outputNames.forEach((name, i) => {
      const t = result[name];
      writeNpy(path.join(opts['output-dir'], `output_${i}.npy`), t.data, t.dims, t.type);
    });
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
