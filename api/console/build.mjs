// Builds the console: node build.mjs OUT_DIR  →  OUT_DIR/index.html, OUT_DIR/assets/app.js, OUT_DIR/assets/app.css
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const fail = (msg) => {
  console.error(`console build: ${msg}`);
  process.exit(1);
};

const outArg = process.argv[2];
if (!outArg) fail('usage: node build.mjs OUT_DIR (the output directory is required)');
const out = resolve(outArg);

let esbuild;
try {
  esbuild = await import('esbuild');
} catch (e) {
  fail(`esbuild is not installed (${e.message}); run "npm ci" in ${here} first`);
}
if (!existsSync(join(here, 'node_modules', 'preact')) || !existsSync(join(here, 'node_modules', 'htm'))) {
  fail(`preact/htm are not installed; run "npm ci" in ${here} first`);
}

const started = Date.now();
let result;
try {
  result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: ['src/main.js'],
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['es2020'],
    outfile: 'assets/app.js', // with write: false, paths only name the outputs
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
    metafile: false,
  });
} catch (e) {
  const msgs = (e.errors || []).slice(0, 20).map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`);
  fail(`esbuild failed:\n  ${msgs.join('\n  ') || e.message}`);
}

const files = {};
for (const f of result.outputFiles) {
  const name = f.path.endsWith('.css') ? 'app.css' : f.path.endsWith('.js') ? 'app.js' : null;
  if (!name) fail(`unexpected output ${f.path}`);
  files[name] = f.contents;
}
if (!files['app.js'] || !files['app.css']) fail('esbuild produced no app.js or no app.css');

const hash = (buf) => createHash('sha256').update(buf).digest('hex').slice(0, 12);
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('__HASH_JS__', hash(files['app.js']))
  .replace('__HASH_CSS__', hash(files['app.css']));

try {
  mkdirSync(out, { recursive: true });
  rmSync(join(out, 'assets'), { recursive: true, force: true });
  rmSync(join(out, 'index.html'), { force: true });
  mkdirSync(join(out, 'assets'));
  writeFileSync(join(out, 'assets', 'app.js'), files['app.js']);
  writeFileSync(join(out, 'assets', 'app.css'), files['app.css']);
  writeFileSync(join(out, 'index.html'), html);
} catch (e) {
  fail(`cannot write ${out}: ${e.message}`);
}
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(
  `console build: ${out} (app.js ${kb(files['app.js'].length)}, app.css ${kb(files['app.css'].length)}) in ${Date.now() - started} ms`,
);
