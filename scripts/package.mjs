// Builds the installable extension: vlcache-<version>-<platform>.vsix with the bundled
// extension and daemon, the built-in model, the webview assets, and the native
// runtime pieces that stay outside the bundle (onnxruntime-node with only this
// platform's binaries, onnxruntime-common, sharp with the target's @img/sharp-* binaries)
// under dist/node_modules, where `require` from dist/cli.js and dist/image-worker.js finds them.
//
//   node scripts/package.mjs [--target linux-x64] [--out FILE]   (npm run package)
//
// Works offline: the files come from this checkout's node_modules (after npm ci).
// The staging folder .package/ is rebuilt each time and ignored by git.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const option = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const target = option('--target', `${process.platform === 'win32' ? 'win32' : process.platform}-${process.arch}`);
const [platform, arch] = target.split('-');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const out = resolve(option('--out', join(root, `vlcache-${pkg.version}-${target}.vsix`)));
const stage = join(root, '.package');

function run(cmd, argv, cwd) {
  const r = spawnSync(cmd, argv, { cwd, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status ?? r.signal})`);
}

/** Copies a package from node_modules into the staging dist/node_modules; `filter` sees paths relative to the package. */
function copyModule(name, filter = () => true) {
  const from = join(root, 'node_modules', name);
  if (!existsSync(from)) throw new Error(`node_modules/${name} is missing: run npm ci first`);
  cpSync(from, join(stage, 'dist', 'node_modules', name), {
    recursive: true,
    filter: (src) => filter(src.slice(from.length + 1).replace(/\\/g, '/')),
  });
}

run(process.execPath, ['esbuild.mjs'], root);
rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, 'dist'), { recursive: true });
for (const f of ['dist/cli.js', 'dist/image-worker.js', 'dist/extension.js', 'LICENSE', 'CHANGELOG.md']) cpSync(join(root, f), join(stage, f));
cpSync(join(root, 'media'), join(stage, 'media'), { recursive: true });
// The Marketplace page is the short user-facing README (package.json "vsce": {"readmePath"}), not the engineering one.
cpSync(join(root, pkg.vsce.readmePath), join(stage, 'README.md'));

// onnxruntime-node: its JS, and the binaries of the target platform only (45 MB of 200 MB for linux-x64).
const nativeDir = `bin/napi-v6/${platform}/${arch}`;
copyModule('onnxruntime-node', (rel) =>
  rel === '' || !rel.startsWith('bin/') || rel === 'bin' || rel === 'bin/napi-v6' || rel === `bin/napi-v6/${platform}` || rel === nativeDir || rel.startsWith(`${nativeDir}/`));
if (!existsSync(join(stage, 'dist', 'node_modules', 'onnxruntime-node', nativeDir))) {
  throw new Error(`onnxruntime-node has no binaries for ${target} (${nativeDir})`);
}
// onnxruntime-common: the CommonJS build that require() loads (its ESM copy would double its files).
copyModule('onnxruntime-common', (rel) => rel === '' || rel === 'package.json' || rel.startsWith('LICENSE') || rel === 'dist' ||
  rel === 'dist/cjs' || rel.startsWith('dist/cjs/'));
// koffi (the FFI of engine/ort-capi.ts: loads ONNX Runtime beside an installed CUDA provider) and its prebuilt binary.
copyModule('koffi', (rel) => !rel.startsWith('doc') && !rel.startsWith('vendor') && !rel.endsWith('.md'));
if (existsSync(join(root, 'node_modules', '@koromix', `koffi-${platform}-${arch}`))) copyModule(`@koromix/koffi-${platform}-${arch}`);
// sharp (image decoding): its JS and dependencies, and the target's native binding and libvips, which
// npm installs only for the platform it runs on. For another target, first run for example
// `npm install --no-save --os=win32 --cpu=x64 sharp@<the locked version>`.
for (const m of ['sharp', '@img/colour', 'detect-libc', 'semver']) copyModule(m);
const sharpOs = platform === 'alpine' ? 'linuxmusl' : platform; // VS Code's alpine-x64 is sharp's linuxmusl-x64
for (const m of [`@img/sharp-${sharpOs}-${arch}`, `@img/sharp-libvips-${sharpOs}-${arch}`]) {
  if (!existsSync(join(root, 'node_modules', m))) {
    if (m.includes('libvips') && platform === 'win32') continue; // Windows packages bundle libvips in the binding's package.
    throw new Error(`node_modules/${m} is missing: sharp's binaries for ${target} are not installed ` +
      `(npm install --no-save --os=${platform === 'alpine' ? 'linux --libc=musl' : platform} --cpu=${arch} sharp@${pkg.dependencies.sharp})`);
  }
  copyModule(m);
}

// The manifest without what only development needs.
const manifest = { ...pkg };
delete manifest.devDependencies;
delete manifest.scripts;
delete manifest.private;
delete manifest.bin;
delete manifest.vsce; // the root's options (README path, generated ignore file) do not apply to the stage
delete manifest.overrides; // install-time settings of this checkout
delete manifest.allowScripts;
manifest.dependencies = {}; // everything else is inside the bundles; the natives ship under dist/node_modules
writeFileSync(join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
writeFileSync(join(stage, '.vscodeignore'), ['**/*.map', '**/*.d.ts', 'dist/node_modules/**/*.md', ''].join('\n'));

mkdirSync(dirname(out), { recursive: true });
const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
run(process.execPath, [vsce, 'package', '--no-dependencies', '--no-rewrite-relative-links', '--target', target, '--out', out], stage);
console.log(`packaged ${out}`);
