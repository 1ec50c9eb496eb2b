// Draws the app's icons (public/icons/*.png) with pngjs: a flamingo-pink disc with a beak and an
// eye on a dark square. Run `node scripts/make-icons.mjs` after changing it; the PNGs are committed.
// The maskable variant keeps the drawing inside the central 80 % safe zone.
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';

const BACKGROUND = [27, 27, 47];
const PINK = [242, 107, 138];
const BEAK = [40, 40, 40];
const EYE = [255, 255, 255];

function icon(size, { maskable }) {
  const png = new PNG({ width: size, height: size });
  const scale = maskable ? 0.62 : 0.8; // the disc's diameter as a share of the side
  const c = size / 2;
  const r = (size * scale) / 2;
  // 4×4 samples a pixel: smooth edges without a drawing library.
  const samples = 4;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const sum = [0, 0, 0];
      for (let sy = 0; sy < samples; sy++) {
        for (let sx = 0; sx < samples; sx++) {
          const colour = colourAt((x + (sx + 0.5) / samples - c) / r, (y + (sy + 0.5) / samples - c) / r);
          for (let k = 0; k < 3; k++) sum[k] += colour[k];
        }
      }
      const i = (y * size + x) * 4;
      for (let k = 0; k < 3; k++) png.data[i + k] = Math.round(sum[k] / samples ** 2);
      png.data[i + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

/** The drawing in disc units: (0, 0) the centre, 1 the disc's radius. */
function colourAt(u, v) {
  if (Math.hypot(u - 0.2, v + 0.25) < 0.12) return EYE;
  // The beak: a triangle pointing down and right from the disc's right side.
  if (u > 0.45 && u < 1.15 && v > -0.15 && v < 0.45 && v + 0.15 > (u - 0.45) * 0.85) return BEAK;
  if (Math.hypot(u, v) < 1) return PINK;
  return BACKGROUND;
}

const out = new URL('../public/icons/', import.meta.url);
for (const size of [192, 512]) writeFileSync(new URL(`icon-${size}.png`, out), icon(size, { maskable: false }));
writeFileSync(new URL('icon-maskable-512.png', out), icon(512, { maskable: true }));
writeFileSync(new URL('apple-touch-icon.png', out), icon(180, { maskable: true }));
console.log('wrote public/icons/');
