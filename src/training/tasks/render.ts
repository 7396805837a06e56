import sharp from 'sharp';
import type { RgbImage } from '../../tools/image.js';

/** Renders a width x height picture drawn by these SVG elements, in order. */
export function renderScene(width: number, height: number, parts: string[]): Promise<RgbImage> {
  return renderSvg(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`);
}

/** Renders an SVG document to RGB with sharp (librsvg). */
export async function renderSvg(svg: string): Promise<RgbImage> {
  const { data, info } = await sharp(Buffer.from(svg)).flatten({ background: '#ffffff' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

export const COLORS: Record<string, [number, number, number]> = {
  red: [220, 30, 30], green: [30, 160, 50], blue: [40, 70, 220], yellow: [235, 200, 20], purple: [140, 50, 170], orange: [245, 130, 20],
};
/** The paper-like page colour every synthetic image is drawn on. */
export const BACKGROUND = '#f0efe8';

export const COLOR_NAMES = Object.keys(COLORS);
export const hex = ([r, g, b]: [number, number, number]) => `#${[r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('')}`;

export type ShapeName = 'circle' | 'square' | 'triangle' | 'diamond';
export const SHAPES: ShapeName[] = ['circle', 'square', 'triangle', 'diamond'];

/** SVG element of a shape inscribed in the box (x, y, size). */
export function shapeSvg(shape: ShapeName, x: number, y: number, size: number, fill: string): string {
  const c = size / 2;
  if (shape === 'circle') return `<circle cx="${x + c}" cy="${y + c}" r="${c}" fill="${fill}"/>`;
  if (shape === 'square') return `<rect x="${x}" y="${y}" width="${size}" height="${size}" fill="${fill}"/>`;
  if (shape === 'triangle') return `<polygon points="${x + c},${y} ${x + size},${y + size} ${x},${y + size}" fill="${fill}"/>`;
  return `<polygon points="${x + c},${y} ${x + size},${y + c} ${x + c},${y + size} ${x},${y + c}" fill="${fill}"/>`;
}

let fontsChecked: Promise<void> | undefined;

/**
 * SVG text is drawn with the system's fonts (fontconfig); on a machine without any, librsvg draws
 * nothing and a text task would silently have no answer in it. Fails naming the Debian package.
 */
export function requireFonts(): Promise<void> {
  fontsChecked ??= (async () => {
    const probe = await renderScene(60, 40, ['<text x="4" y="32" font-family="DejaVu Sans Mono" font-size="32" fill="#000">W</text>']);
    let dark = 0;
    for (let i = 0; i < probe.data.length; i += 3) if (probe.data[i]! < 128) dark++;
    if (dark < 20) throw new Error('rendering text needs fonts: install the Debian package "fonts-dejavu-core" (apt-get install fonts-dejavu-core)');
  })();
  return fontsChecked;
}
