/** Paths of assets shipped with the package, from the bundle (dist/) or the sources. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export function packageRoot(): string {
  // The bundle lives in dist/; sources run from server/src/ under tsx.
  for (const up of ['..', '../..', '../../..']) {
    const root = resolve(__dirname, up);
    if (existsSync(join(root, 'package.json')) && existsSync(join(root, 'media'))) return root;
  }
  return resolve(__dirname, '..');
}

export const builtinModelDir = (): string => join(packageRoot(), 'media', 'model');
export const demoImage = (): string => join(packageRoot(), 'media', 'samples', 'diagram.png');
