/**
 * Reads the float32 initializers (weights) of an ONNX ModelProto: a minimal protobuf wire-format
 * reader for the few fields involved (ModelProto.graph → GraphProto.initializer → TensorProto
 * dims, data_type, name, raw_data/float_data), so a model directory's weights can be loaded for
 * training without a protobuf dependency (the writer is hand-written for the same reason).
 */
export type Initializers = Map<string, { dims: number[]; data: Float32Array }>;

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, readonly end = buf.length) {}

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
      shift += 7;
    }
  }

  /** Each field as [number, wire type, payload reader or value]. */
  *fields(): Generator<{ field: number; wire: number; value: number; bytes?: Uint8Array }> {
    while (this.pos < this.end) {
      const key = this.varint();
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (wire === 0) yield { field, wire, value: this.varint() };
      else if (wire === 2) {
        const len = this.varint();
        const bytes = this.buf.subarray(this.pos, this.pos + len);
        this.pos += len;
        yield { field, wire, value: len, bytes };
      } else if (wire === 5) {
        this.pos += 4;
        yield { field, wire, value: 0 };
      } else if (wire === 1) {
        this.pos += 8;
        yield { field, wire, value: 0 };
      } else throw new Error(`unsupported protobuf wire type ${wire}`);
    }
  }
}

/** Where an initializer's bytes live when they are in an external-data file (TensorProto fields 13 and 14). */
export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

function readEntry(bytes: Uint8Array): [string, string] {
  let key = '';
  let value = '';
  for (const f of new Reader(bytes).fields()) {
    if (f.field === 1 && f.bytes) key = new TextDecoder().decode(f.bytes);
    else if (f.field === 2 && f.bytes) value = new TextDecoder().decode(f.bytes);
  }
  return [key, value];
}

function readTensor(bytes: Uint8Array): { name: string; dataType: number; dims: number[]; data?: Float32Array; external?: ExternalRef } {
  const dims: number[] = [];
  let name = '';
  let dataType = 0;
  let data: Float32Array | undefined;
  const entries: Record<string, string> = {};
  for (const f of new Reader(bytes).fields()) {
    if (f.field === 1 && f.wire === 0) dims.push(f.value);
    else if (f.field === 1 && f.bytes) {
      const r = new Reader(f.bytes);
      while (r.pos < r.end) dims.push(r.varint());
    } else if (f.field === 2) dataType = f.value;
    else if (f.field === 8 && f.bytes) name = new TextDecoder().decode(f.bytes);
    else if ((f.field === 9 || f.field === 4) && f.bytes) {
      // raw_data (little-endian bytes) or packed float_data: the same layout for float32.
      data = new Float32Array(f.bytes.byteLength / 4);
      new Uint8Array(data.buffer).set(f.bytes);
    } else if (f.field === 13 && f.bytes) {
      const [k, v] = readEntry(f.bytes);
      entries[k] = v;
    }
  }
  const external = entries.location ? { location: entries.location, offset: Number(entries.offset ?? 0), length: Number(entries.length ?? 0) } : undefined;
  return { name, dataType, dims, data, external };
}

/** Initializers whose bytes are in an external-data file: name, ONNX data type, dims and where. */
export function readExternalInitializers(model: Uint8Array): { name: string; dataType: number; dims: number[]; external: ExternalRef }[] {
  const out: { name: string; dataType: number; dims: number[]; external: ExternalRef }[] = [];
  for (const f of new Reader(model).fields()) {
    if (f.field !== 7 || !f.bytes) continue;
    for (const gf of new Reader(f.bytes).fields()) {
      if (gf.field !== 5 || !gf.bytes) continue;
      const t = readTensor(gf.bytes);
      if (t.external) out.push({ name: t.name, dataType: t.dataType, dims: t.dims, external: t.external });
    }
  }
  return out;
}

export function readInitializers(model: Uint8Array): Initializers {
  const out: Initializers = new Map();
  for (const f of new Reader(model).fields()) {
    if (f.field !== 7 || !f.bytes) continue;
    for (const gf of new Reader(f.bytes).fields()) {
      if (gf.field !== 5 || !gf.bytes) continue;
      const t = readTensor(gf.bytes);
      if (t.dataType === 1 && t.data) out.set(t.name, { dims: t.dims, data: t.data });
    }
  }
  return out;
}
