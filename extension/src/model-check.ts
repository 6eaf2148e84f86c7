/**
 * A first check of a model folder, done by the extension the moment `vlcache.modelPath` is set or
 * picked (the daemon's own, complete check runs when it loads the model): the folder exists, has a
 * readable `config.json` of a Qwen2-VL / Qwen2.5-VL model, a `tokenizer.json` and weights. Returns
 * the exact problem, or undefined when the folder looks like a checkpoint. Plain Node (unit-tested).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const MODEL_TYPES = ['qwen2_vl', 'qwen2_5_vl'];

export const MODEL_SETTING = 'vlcache.modelPath';

/** A daemon message in the CLI's wording ("Point --model at …") in the editor's ("Set vlcache.modelPath to …"). */
export function inEditorTerms(message: string): string {
  return message.replace(/\bPoint --model at\b/g, `Set ${MODEL_SETTING} to`).replace(/\bpoint --model at\b/g, `set ${MODEL_SETTING} to`)
    .replace(/--model\b/g, MODEL_SETTING);
}

export function modelFolderProblem(dir: string): string | undefined {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is a file, not a folder`;
    names = readdirSync(dir);
  } catch (e) {
    return `${dir} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  if (!names.includes('config.json')) return `${dir} has no config.json: it is not a Hugging Face checkpoint folder`;
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  } catch (e) {
    return `config.json in ${dir} is not valid JSON (${(e as Error).message})`;
  }
  const type = typeof config === 'object' && config !== null ? (config as { model_type?: unknown }).model_type : undefined;
  if (typeof type !== 'string' || !MODEL_TYPES.includes(type)) {
    return `config.json in ${dir} is a ${typeof type === 'string' ? `"${type}"` : 'model without model_type'}, not Qwen2-VL or Qwen2.5-VL (model_type ${MODEL_TYPES.join(' or ')})`;
  }
  if (!names.includes('tokenizer.json')) return `${dir} has no tokenizer.json`;
  if (!names.some((n) => n.endsWith('.safetensors') || n.endsWith('.onnx'))) return `${dir} has no weights (*.safetensors)`;
  return undefined;
}
