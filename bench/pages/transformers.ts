// The peer: @huggingface/transformers (4.x) running our frozen LM alone, exported in its layout
// by models/tools/export_lm_transformersjs.py into `bench-models/flamingo-lm/` of the bench build
// (bench/browser.ts puts it there). WASM EP, greedy, a fixed number of new tokens. Nothing is
// fetched from a CDN or the Hub: the model is local and ONNX Runtime's files come from `ort/`.
import {
  AutoModelForCausalLM,
  AutoTokenizer,
  BaseStreamer,
  env,
  Tensor,
  type TextStreamer,
  type PreTrainedModel,
  type PreTrainedTokenizer,
} from '@huggingface/transformers';
import type { TransformersBenchApi } from './protocol';

const MODEL = 'flamingo-lm';

env.allowRemoteModels = false;
env.allowLocalModels = true;
// A path, not a URL: transformers.js looks for local files only under a non-URL path.
env.localModelPath = `${import.meta.env.BASE_URL}bench-models/`;
env.useBrowserCache = false; // every load reads the files, as a first visit would
env.useWasmCache = false;
const onnxEnv = env.backends.onnx as { wasm?: { wasmPaths?: unknown; numThreads?: number } };
if (onnxEnv.wasm) {
  // transformers.js' default build on the web (asyncify), from this origin. vite.config.ts
  // resolves its `onnxruntime-web/webgpu` import to the app's ORT 1.30, so both sides run
  // the same ONNX Runtime; the thread count is ORT's default, as in the app.
  const base = new URL(`${import.meta.env.BASE_URL}ort/`, window.location.href).href;
  onnxEnv.wasm.wasmPaths = { mjs: `${base}ort-wasm-simd-threaded.asyncify.mjs`, wasm: `${base}ort-wasm-simd-threaded.asyncify.wasm` };
}

/** Timestamps each new token as generate() pushes it (the first put is the prompt). */
class TimingStreamer extends BaseStreamer {
  readonly times: number[] = [];
  private seenPrompt = false;
  override put(): void {
    if (!this.seenPrompt) {
      this.seenPrompt = true;
      return;
    }
    this.times.push(performance.now());
  }
  override end(): void {}
}

let model: PreTrainedModel | undefined;
let tokenizer: PreTrainedTokenizer | undefined;

const api: TransformersBenchApi = {
  async load() {
    const t0 = performance.now();
    [model, tokenizer] = await Promise.all([
      AutoModelForCausalLM.from_pretrained(MODEL, { device: 'wasm', dtype: 'fp32' }),
      AutoTokenizer.from_pretrained(MODEL),
    ]);
    return { loadMs: performance.now() - t0, version: env.version };
  },

  async decodeIds(ids, newTokens) {
    if (!model) throw new Error('transformers.js bench: load() first');
    const inputIds = new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]);
    const attentionMask = new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
    const streamer = new TimingStreamer();
    const t0 = performance.now();
    await model.generate({
      input_ids: inputIds,
      attention_mask: attentionMask,
      max_new_tokens: newTokens,
      min_new_tokens: newTokens, // <|endofchunk|> (its eos) is suppressed until then: a fixed count
      do_sample: false,
      // generate()'s type asks for a TextStreamer; it calls only put() and end().
      streamer: streamer as unknown as TextStreamer,
    });
    const t = streamer.times;
    return {
      tokens: t.length,
      tokensPerSecond: ((t.length - 1) * 1000) / (t[t.length - 1] - t[0]),
      ttftMs: t[0] - t0,
    };
  },

  async encode(text) {
    if (!tokenizer) throw new Error('transformers.js bench: load() first');
    return tokenizer.encode(text, { add_special_tokens: false });
  },
};

window.transformersBench = api;
