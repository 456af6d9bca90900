/** Separable box blur in place with running sums (edges clamped); twice approximates a Gaussian. */
export function boxBlur(img: Float32Array, S: number, r: number): void {
  const line = new Float32Array(S);
  const w = 1 / (2 * r + 1);
  // stride between neighbours along the line, and between lines
  for (const [step, lineStride] of [
    [3, S * 3],
    [S * 3, 3],
  ] as const) {
    for (let l = 0; l < S; l++) {
      for (let c = 0; c < 3; c++) {
        const base = l * lineStride + c;
        for (let i = 0; i < S; i++) line[i] = img[base + i * step] as number;
        let sum = 0;
        for (let k = -r; k <= r; k++) sum += line[Math.max(0, Math.min(S - 1, k))] as number;
        for (let i = 0; i < S; i++) {
          img[base + i * step] = sum * w;
          sum += (line[Math.min(S - 1, i + r + 1)] as number) - (line[Math.max(0, i - r)] as number);
        }
      }
    }
  }
}
