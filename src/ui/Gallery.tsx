import { useEffect, useState } from 'react';
import { galleryImageUrl, loadGallery, type GalleryExample } from './gallery';

interface Props {
  onPick: (example: GalleryExample) => void;
  onError: (error: unknown) => void;
}

/** Ready few-shot prompts in the style the model never trained on: one click writes the prompt. */
export function Gallery({ onPick, onError }: Props) {
  const [examples, setExamples] = useState<GalleryExample[]>();
  useEffect(() => {
    let cancelled = false;
    loadGallery().then(
      (list) => !cancelled && setExamples(list),
      (error: unknown) => !cancelled && onError(error),
    );
    return () => {
      cancelled = true;
    };
  }, [onError]);

  return (
    <section className="panel gallery" aria-labelledby="gallery-heading">
      <h2 id="gallery-heading">Try an example</h2>
      <p className="hint">
        Few-shot prompts drawn in OpenMoji’s style, which the model never saw in training; the words and things are
        held out too. Pick one, then press Generate (or Rank).
      </p>
      <ul className="gallery-list" data-testid="gallery">
        {examples?.map((example) => {
          const images = example.segments.flatMap((segment) => ('image' in segment ? [segment.image] : []));
          return (
            <li key={example.id}>
              <button
                type="button"
                className="gallery-card"
                data-testid="gallery-example"
                data-example={example.id}
                aria-describedby={`gallery-${example.id}`}
                onClick={() => onPick(example)}
              >
                <span className="gallery-images" aria-hidden="true">
                  {images.slice(0, 6).map((image) => (
                    <img key={image} src={galleryImageUrl(image)} alt="" width={32} height={32} />
                  ))}
                </span>
                <strong>{example.title}</strong>
                <span className="muted" id={`gallery-${example.id}`}>
                  {example.description}
                </span>
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
