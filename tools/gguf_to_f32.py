#!/usr/bin/env python3
"""Write a copy of a GGUF file with every tensor dequantized to F32 (metadata unchanged).

The fidelity tier (tests/fidelity_llamacpp.rs) runs llama.cpp on this copy: with F32 weights
llama.cpp computes every matrix product in f32 (no 8-bit activation blocks), the same arithmetic
as Hearth's exact CPU engine on the original file, so the two must agree to rounding.

Usage: python3 tools/gguf_to_f32.py SRC.gguf DST.gguf   (needs gguf-py and numpy, as ./run test)
"""

import sys

import numpy as np

import gguf
from gguf import GGUFReader, GGUFValueType, GGUFWriter


def main(src: str, dst: str) -> None:
    reader = GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(dst, arch)
    for name, field in reader.fields.items():
        # The header fields are the writer's own; the architecture was given above.
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[1] if vtype == GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub)
    for t in reader.tensors:
        data = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        writer.add_tensor(t.name, data.reshape([int(d) for d in reversed(t.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
