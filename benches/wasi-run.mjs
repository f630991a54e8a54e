// Runs a wasm32-wasip1 program under Node's WASI with the arguments given:
// `node benches/wasi-run.mjs program.wasm [args...]`. ./build.sh bench uses
// it to time benches/examples/exchange_loop in V8, the engine Envoy runs the
// module in, with no host calls in the measurement (see benches/README.md).
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
