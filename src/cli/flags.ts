/** A numeric flag's value (`--n 200`), or undefined when the flag was not given. */
export const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
