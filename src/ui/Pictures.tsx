// What the model looked at, for an answer on screen: each gated layer's tanh(alpha) and
// tanh(beta), and for a chosen answer token its cross-attention over the latents of the image it
// looked at, carried back onto that image as a heatmap (src/engine/pictures.ts). Computed by one
// extra call in the worker when asked for, never while generating.
import { useEffect, useRef, useState } from 'react';
import type { DoneEvent, Prompt, RgbaImage } from '../engine/types';
import type { FlamingoClient, Pictures as PicturesData } from '../worker/client';

interface Props {
  client: FlamingoClient;
  /** The prompt the answer came from (kept in the page: its pixels are drawn here). */
  prompt: Prompt;
  done: DoneEvent;
  onError: (error: unknown) => void;
}

type Layer = number | 'mean';

export function Pictures({ client, prompt, done, onError }: Props) {
  const [pictures, setPictures] = useState<PicturesData>();
  const [loading, setLoading] = useState(false);
  const [token, setToken] = useState(0);
  const [layer, setLayer] = useState<Layer>('mean');

  useEffect(() => {
    setPictures(undefined);
    setToken(0);
  }, [done]);

  const show = async () => {
    setLoading(true);
    try {
      setPictures(await client.explain(copyPrompt(prompt), done.tokenIds));
    } catch (error) {
      onError(error);
    } finally {
      setLoading(false);
    }
  };

  if (done.tokenIds.length === 0) return null;
  const images = prompt.flatMap((s) => ('image' in s ? [[s.image]] : 'video' in s ? [s.video] : []));
  const chosen = pictures?.tokens[token];
  return (
    <section className="panel pictures" aria-labelledby="pictures-heading" data-testid="pictures">
      <h2 id="pictures-heading">What it looked at</h2>
      {!pictures ? (
        <button type="button" data-testid="show-pictures" disabled={loading} onClick={() => void show()}>
          {loading ? 'Working…' : 'Show attention for this answer'}
        </button>
      ) : (
        <>
          <table className="gates" data-testid="gates">
            <caption>Gates of the gated cross-attention blocks (0 at initialisation: the language model unchanged)</caption>
            <thead>
              <tr>
                <th scope="col">Layer</th>
                <th scope="col">tanh(α), attention</th>
                <th scope="col">tanh(β), feed-forward</th>
              </tr>
            </thead>
            <tbody>
              {pictures.gates.map((g) => (
                <tr key={g.layer}>
                  <th scope="row">{g.layer}</th>
                  <td>{g.attn.toFixed(3)}</td>
                  <td>{g.ff.toFixed(3)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div role="group" aria-label="Answer tokens" className="token-chips">
            {pictures.tokens.map((t, i) => (
              <button
                key={i}
                type="button"
                aria-pressed={i === token}
                data-testid="picture-token"
                onClick={() => setToken(i)}
              >
                {t.text.trim() === '' ? '␣' : t.text}
              </button>
            ))}
          </div>
          <label>
            Layer{' '}
            <select value={String(layer)} onChange={(e) => setLayer(e.target.value === 'mean' ? 'mean' : Number(e.target.value))}>
              <option value="mean">mean of all gated layers</option>
              {pictures.gates.map((g) => (
                <option key={g.layer} value={g.layer}>
                  layer {g.layer}
                </option>
              ))}
            </select>
          </label>
          {chosen && chosen.media >= 0 ? (
            <Heatmap
              image={images[chosen.media][0]}
              grid={pictures.grid}
              cells={cellsFor(chosen.layers, layer)}
              label={`Where “${chosen.text.trim()}” looked: image ${chosen.media + 1}`}
            />
          ) : (
            <p>{chosen ? 'This token came before any image: it looked at none.' : ''}</p>
          )}
        </>
      )}
    </section>
  );
}

function cellsFor(layers: PicturesData['tokens'][number]['layers'], layer: Layer): number[] {
  const picked = layer === 'mean' ? layers : layers.filter((l) => l.layer === layer);
  const frame0 = picked.map((l) => l.cells[0]);
  return frame0[0].map((_, c) => frame0.reduce((sum, cells) => sum + cells[c], 0) / frame0.length);
}

function Heatmap({ image, grid, cells, label }: { image: RgbaImage; grid: number; cells: number[]; label: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const ctx = canvas.current?.getContext('2d');
    if (!ctx || !canvas.current) return;
    const size = canvas.current.width;
    const bitmap = document.createElement('canvas');
    bitmap.width = image.width;
    bitmap.height = image.height;
    bitmap.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(image.data), image.width, image.height), 0, 0);
    ctx.clearRect(0, 0, size, size);
    ctx.drawImage(bitmap, 0, 0, size, size);
    const max = Math.max(...cells);
    const min = Math.min(...cells);
    const cell = size / grid;
    cells.forEach((w, c) => {
      ctx.fillStyle = `rgba(220, 30, 60, ${(0.7 * (w - min)) / (max - min || 1)})`;
      ctx.fillRect((c % grid) * cell, Math.floor(c / grid) * cell, cell, cell);
    });
  }, [image, grid, cells]);
  const strongest = cells.indexOf(Math.max(...cells));
  return (
    <figure className="heatmap">
      <canvas ref={canvas} width={256} height={256} role="img" aria-label={`${label}; strongest in row ${Math.floor(strongest / grid) + 1}, column ${(strongest % grid) + 1}`} data-testid="heatmap" />
      <figcaption>{label}</figcaption>
    </figure>
  );
}

/** explain() transfers the pixels it is given: keep the page's own copy. */
function copyPrompt(prompt: Prompt): Prompt {
  const copy = (i: RgbaImage): RgbaImage => ({ width: i.width, height: i.height, data: new Uint8Array(i.data) });
  return prompt.map((s) => ('image' in s ? { image: copy(s.image) } : 'video' in s ? { video: s.video.map(copy) } : s));
}
