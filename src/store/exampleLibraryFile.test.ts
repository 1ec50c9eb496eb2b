import { describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { LibraryFileError, parseLibraryFile, serializeLibrary, type ExampleRecord } from './exampleLibraryFile';

function png(colour: number): Uint8Array {
  const image = new PNG({ width: 2, height: 2 });
  image.data.fill(colour);
  return new Uint8Array(PNG.sync.write(image));
}

const examples: ExampleRecord[] = [
  { name: 'dog.png', text: 'Output: dog face.', png: png(10), addedAt: 1 },
  { name: 'pizza.png', text: 'Output: pizza.', png: png(200), addedAt: 2 },
];

const file = (body: object) => JSON.stringify({ format: 'flamingo-web/example-library', version: 1, ...body });

describe('example library files', () => {
  it('round-trips names, texts and PNG bytes', () => {
    const back = parseLibraryFile(serializeLibrary(examples));
    expect(back.map(({ name, text, addedAt }) => ({ name, text, addedAt }))).toEqual(
      examples.map(({ name, text, addedAt }) => ({ name, text, addedAt })),
    );
    back.forEach((example, i) => expect(Array.from(example.png)).toEqual(Array.from(examples[i].png)));
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['another JSON file', JSON.stringify({ hello: 1 }), /not an example library/],
    ['a newer version', JSON.stringify({ format: 'flamingo-web/example-library', version: 2, examples: [] }), /version 2/],
    ['no list', file({}), /no "examples" list/],
    ['no text', file({ examples: [{ image: 'data:image/png;base64,AAAA' }] }), /Example 1 has no "text"/],
    ['a JPEG data URL', file({ examples: [{ text: 'x', image: 'data:image/jpeg;base64,AAAA' }] }), /Example 1: "image" is not a PNG data URL/],
    ['bad base64', file({ examples: [{ text: 'x', image: 'data:image/png;base64,@@@' }] }), /not valid base64/],
    ['bytes that are not a PNG', file({ examples: [{ text: 'x', image: `data:image/png;base64,${btoa('hello world, not png')}` }] }), /not a PNG file/],
  ])('rejects %s with a clear message', (_, contents, message) => {
    expect(() => parseLibraryFile(contents)).toThrow(LibraryFileError);
    expect(() => parseLibraryFile(contents)).toThrow(message);
  });

  it('names the example that is wrong, after good ones', () => {
    const good = JSON.parse(serializeLibrary(examples)) as { examples: object[] };
    const contents = file({ examples: [...good.examples, { text: 'x', image: 'nope' }] });
    expect(() => parseLibraryFile(contents)).toThrow(/Example 3/);
  });
});
