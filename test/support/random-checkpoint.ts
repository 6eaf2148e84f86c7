/**
 * Writes a small random-weight Qwen2-VL / Qwen2.5-VL checkpoint (config.json in
 * the transformers-5 nested layout + model.safetensors) for invariant tests that
 * need no reference numbers (selective prefill == full prefill, etc.).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCheckpoint, type Checkpoint } from '../../server/src/engine/checkpoint';
import { decodeToF32, encodeFromF32, writeSafetensors, TensorToWrite } from '../../server/src/engine/safetensors';

export interface RandomCheckpointOptions {
  family: 'qwen2_vl' | 'qwen2_5_vl';
  seed?: number;
  dtype?: 'F32' | 'BF16' | 'F16';
  tied?: boolean;
  /** Round every value to bf16 first, so F32/F16/BF16 files of one seed hold identical numbers. */
  bf16Values?: boolean;
  /** Decoder layers (2). */
  layers?: number;
  /** Tensors whose first value is NaN (tests of the engine's non-finite checks). */
  nanIn?: readonly string[];
  /** Tensors whose first value is +Infinity. */
  infIn?: readonly string[];
  /** lm_head row 2k+1 equal to row 2k (untied only): every logit ties with its pair's (tests of tie-breaks). */
  pairedHead?: boolean;
}

/** Tiny dims: text hidden 32 (4 heads of 8, 2 kv heads), 2 layers (or `layers`); vision width 16, depth 2. */
export function writeRandomCheckpoint(dir: string, o: RandomCheckpointOptions): void {
  mkdirSync(dir, { recursive: true });
  let s = (o.seed ?? 1) >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = Math.imul(s ^ (s >>> 15), s | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
  const dtype = o.dtype ?? 'F32';
  const tensors: TensorToWrite[] = [];
  const add = (name: string, shape: number[], scale = 0.2, base = 0) => {
    const n = shape.reduce((a, b) => a * b, 1);
    let v: Float32Array = Float32Array.from({ length: n }, () => base + scale * rand());
    if (o.bf16Values) v = decodeToF32(encodeFromF32(v, 'BF16'), 'BF16');
    if (o.nanIn?.includes(name)) v[0] = NaN;
    if (o.infIn?.includes(name)) v[0] = Infinity;
    if (o.pairedHead && name === 'lm_head.weight') for (let r = 1; r < shape[0]; r += 2) v.copyWithin(r * shape[1], (r - 1) * shape[1], r * shape[1]);
    tensors.push({ name, dtype, shape, data: encodeFromF32(v, dtype) });
  };
  const H = 32, L = o.layers ?? 2, heads = 4, kv = 2, hd = 8, I = 64, V = 300;
  const E = 16, vh = 2, depth = 2, vmlp = 32;
  add('model.embed_tokens.weight', [V, H], 1);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [H], 0.2, 1);
    add(`${p}.post_attention_layernorm.weight`, [H], 0.2, 1);
    add(`${p}.self_attn.q_proj.weight`, [heads * hd, H]);
    add(`${p}.self_attn.q_proj.bias`, [heads * hd]);
    add(`${p}.self_attn.k_proj.weight`, [kv * hd, H]);
    add(`${p}.self_attn.k_proj.bias`, [kv * hd]);
    add(`${p}.self_attn.v_proj.weight`, [kv * hd, H]);
    add(`${p}.self_attn.v_proj.bias`, [kv * hd]);
    add(`${p}.self_attn.o_proj.weight`, [H, heads * hd]);
    add(`${p}.mlp.gate_proj.weight`, [I, H]);
    add(`${p}.mlp.up_proj.weight`, [I, H]);
    add(`${p}.mlp.down_proj.weight`, [H, I]);
  }
  add('model.norm.weight', [H], 0.2, 1);
  if (!o.tied) add('lm_head.weight', [V, H]);
  add('visual.patch_embed.proj.weight', [E, 3, 2, 14, 14], 0.05);
  const v25 = o.family === 'qwen2_5_vl';
  for (let b = 0; b < depth; b++) {
    const p = `visual.blocks.${b}`;
    for (const n of ['norm1', 'norm2']) {
      add(`${p}.${n}.weight`, [E], 0.2, 1);
      if (!v25) add(`${p}.${n}.bias`, [E]);
    }
    add(`${p}.attn.qkv.weight`, [3 * E, E]);
    add(`${p}.attn.qkv.bias`, [3 * E]);
    add(`${p}.attn.proj.weight`, [E, E]);
    add(`${p}.attn.proj.bias`, [E]);
    if (v25) {
      for (const n of ['gate_proj', 'up_proj']) { add(`${p}.mlp.${n}.weight`, [vmlp, E]); add(`${p}.mlp.${n}.bias`, [vmlp]); }
      add(`${p}.mlp.down_proj.weight`, [E, vmlp]);
      add(`${p}.mlp.down_proj.bias`, [E]);
    } else {
      add(`${p}.mlp.fc1.weight`, [vmlp, E]); add(`${p}.mlp.fc1.bias`, [vmlp]);
      add(`${p}.mlp.fc2.weight`, [E, vmlp]); add(`${p}.mlp.fc2.bias`, [E]);
    }
  }
  add('visual.merger.ln_q.weight', [E], 0.2, 1);
  if (!v25) add('visual.merger.ln_q.bias', [E]);
  add('visual.merger.mlp.0.weight', [4 * E, 4 * E]);
  add('visual.merger.mlp.0.bias', [4 * E]);
  add('visual.merger.mlp.2.weight', [H, 4 * E]);
  add('visual.merger.mlp.2.bias', [H]);
  writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });

  const ids = { image_token_id: 290, video_token_id: 291, vision_start_token_id: 292, vision_end_token_id: 293 };
  const text = {
    model_type: `${o.family}_text`, vocab_size: V, hidden_size: H, intermediate_size: I, num_hidden_layers: L,
    num_attention_heads: heads, num_key_value_heads: kv, rms_norm_eps: 1e-6, max_position_embeddings: 4096,
    rope_parameters: { rope_type: 'default', type: 'mrope', mrope_section: [1, 1, 2], rope_theta: 10000 },
    tie_word_embeddings: !!o.tied,
  };
  const vision = v25
    ? { model_type: 'qwen2_5_vl', depth, hidden_size: E, intermediate_size: vmlp, num_heads: vh, out_hidden_size: H,
      window_size: 112, fullatt_block_indexes: [1], patch_size: 14, spatial_merge_size: 2, temporal_patch_size: 2,
      in_channels: 3, hidden_act: 'silu' }
    : { model_type: 'qwen2_vl', depth, embed_dim: E, hidden_size: H, num_heads: vh, mlp_ratio: 2, patch_size: 14,
      spatial_merge_size: 2, temporal_patch_size: 2, in_channels: 3, hidden_act: 'quick_gelu' };
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: [v25 ? 'Qwen2_5_VLForConditionalGeneration' : 'Qwen2VLForConditionalGeneration'],
    model_type: o.family, text_config: text, vision_config: vision, tie_word_embeddings: !!o.tied, eos_token_id: 257, ...ids,
  }, null, 1));
  writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({
    min_pixels: 3136, max_pixels: 200704, patch_size: 14, temporal_patch_size: 2, merge_size: 2,
    image_mean: [0.48145466, 0.4578275, 0.40821073], image_std: [0.26862954, 0.26130258, 0.27577711],
    do_rescale: true, rescale_factor: 1 / 255, do_normalize: true, do_convert_rgb: true,
  }));
  // A minimal byte-level tokenizer: the 256 byte symbols plus specials; enough to build prompts.
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(minimalTokenizer(ids)));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|im_end|>', pad_token: '<|endoftext|>' }));
}

function byteSymbols(): string[] {
  // GPT-2 byte-to-unicode table.
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const out = new Array<string>(256);
  bs.forEach((b, i) => { out[b] = String.fromCodePoint(cs[i]); });
  return out;
}

function minimalTokenizer(ids: Record<string, number>): unknown {
  const vocab: Record<string, number> = {};
  byteSymbols().forEach((c, i) => { vocab[c] = i; });
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(256, '<|endoftext|>'), special(257, '<|im_end|>'), special(258, '<|im_start|>'),
      special(ids.image_token_id, '<|image_pad|>'), special(ids.video_token_id, '<|video_pad|>'),
      special(ids.vision_start_token_id, '<|vision_start|>'), special(ids.vision_end_token_id, '<|vision_end|>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
}

/**
 * A random checkpoint in a fresh temp folder, loaded: `tmp/model` holds it, `tmp/home` is
 * VLCACHE_HOME (graph folders and schedules stay inside). `remove()` deletes it all.
 */
export function randomCheckpointInTemp(prefix: string, o: RandomCheckpointOptions): { tmp: string; ckpt: Checkpoint; remove: () => void } {
  const tmp = mkdtempSync(join(tmpdir(), prefix));
  process.env.VLCACHE_HOME = join(tmp, 'home');
  writeRandomCheckpoint(join(tmp, 'model'), o);
  return { tmp, ckpt: loadCheckpoint(join(tmp, 'model')), remove: () => rmSync(tmp, { recursive: true, force: true }) };
}
