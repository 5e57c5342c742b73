// Bundles the pages' entry points (src/*.js, src/*.css) into static/dist with esbuild:
// file names carry a content hash (served with a long cache) and static/dist/manifest.json
// maps each entry's name to its file (and, under "imports", each script to the chunks it
// imports), for the API to put into the pages. bpmnlint's rules are compiled from the
// project's .bpmnlintrc into a module first, so the modeler lints in
// the browser exactly as `make test` lints the bundled diagrams; the element templates in
// bpmn/templates become a module too. Run by `make install`.
import { readdir, readFile, rm, mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, 'static', 'dist');
const generated = path.join(here, '.generated');
const require = createRequire(import.meta.url);

async function compileLintConfig() {
  const compileConfig = require('bpmnlint/lib/support/compile-config');
  const rc = JSON.parse(await readFile(path.join(here, '..', '.bpmnlintrc'), 'utf8'));
  const code = await compileConfig({ extends: rc.extends, rules: rc.rules });
  await mkdir(generated, { recursive: true });
  await writeFile(path.join(generated, 'bpmnlint-config.js'), code);
}

// The pathway's element templates (bpmn/templates/*.json), offered in the modeler's
// properties panel: built into the modeler's bundle, so no route serves them.
async function collectElementTemplates() {
  const folder = path.join(here, '..', 'bpmn', 'templates');
  const names = (await readdir(folder)).filter((name) => name.endsWith('.json')).sort();
  const templates = [];
  for (const name of names) templates.push(JSON.parse(await readFile(path.join(folder, name), 'utf8')));
  await mkdir(generated, { recursive: true });
  await writeFile(
    path.join(generated, 'element-templates.js'),
    `export default ${JSON.stringify(templates)};\n`,
  );
}

async function main() {
  await compileLintConfig();
  await collectElementTemplates();
  const entries = (await readdir(path.join(here, 'src')))
    .filter((name) => /\.(js|css)$/.test(name))
    .map((name) => path.join(here, 'src', name));
  await rm(out, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: entries,
    bundle: true,
    format: 'esm',
    splitting: true,
    outdir: out,
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    assetNames: 'asset-[name]-[hash]',
    loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file', '.svg': 'file' },
    alias: {
      'pathway-bpmnlint-config': path.join(generated, 'bpmnlint-config.js'),
      'pathway-element-templates': path.join(generated, 'element-templates.js'),
    },
    jsx: 'automatic',
    jsxImportSource: '@bpmn-io/properties-panel/preact',
    minify: true,
    legalComments: 'linked',
    target: ['es2020'],
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = result.metafile.outputs;
  // The chunks a script imports (statically, through other chunks too): the pages name them
  // in <link rel="modulepreload">, so the browser fetches them with the entry, not after it.
  const chunksOf = (file, seen = new Set()) => {
    for (const imported of outputs[file]?.imports || []) {
      if (imported.kind !== 'import-statement' || imported.external || seen.has(imported.path)) continue;
      seen.add(imported.path);
      chunksOf(imported.path, seen);
    }
    return seen;
  };
  const manifest = {};
  const imports = {};
  for (const [file, meta] of Object.entries(outputs)) {
    if (!meta.entryPoint) continue;
    const name = path.basename(meta.entryPoint).replace(/\.(js|css)$/, '');
    const ext = path.extname(file);
    manifest[`${name}${ext}`] = path.relative(out, path.resolve(file));
    if (meta.cssBundle) manifest[`${name}.css`] = path.relative(out, path.resolve(meta.cssBundle));
    if (ext === '.js') {
      imports[`${name}${ext}`] = [...chunksOf(file)].map((chunk) => path.relative(out, path.resolve(chunk))).sort();
    }
  }
  manifest.imports = imports;
  await writeFile(path.join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(`web: ${Object.keys(manifest).length - 1} entries' assets in ${path.relative(process.cwd(), out)}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
