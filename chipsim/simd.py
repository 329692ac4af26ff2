"""Vectors for Numba kernels (16 int32 lanes, 64 int8 lanes), and the one operation the quad
kernel needs.

``dot4(acc, packed, w)``, with ``w = load_bytes(x, off)``, adds in each of 16 int32 lanes j
    sum over k < 4 of byte k of ``packed`` (unsigned) x x[off + 4 j + k] (signed int8),
which is one AVX-512 VNNI instruction (vpdpbusd: 64 multiply-adds, no saturation). On a CPU
without VNNI the same sum is emitted as portable LLVM vector code: the result is identical,
only slower. Which of the two is decided when Numba compiles, from the features of the CPU it
compiles for (``has_vnni``; Numba's cache keys machine code by CPU name and features, so a
cached kernel never runs on another).

The vectors live in registers: Numba keeps a value of these types as one LLVM <16 x i32> or
<64 x i8>. Loading the weights apart from the dot product lets a kernel use one load for
several dot products (kernels._dot_quads: four time steps).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic, models, register_model

LANES = 16
_I8 = ir.IntType(8)
_I32 = ir.IntType(32)
_VEC = ir.VectorType(_I32, LANES)
_BYTES = ir.VectorType(_I8, 4 * LANES)


class _Vector(types.Type):
    """A Numba type whose values are one LLVM vector, kept in a register (_LLVM_TYPES)."""


@register_model(_Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type) -> None:
        super().__init__(dmm, fe_type, _LLVM_TYPES[fe_type.name])


_LLVM_TYPES = {"int32x16": _VEC, "int8x64": _BYTES}
int32x16 = _Vector(name="int32x16")     # 16 int32 lanes: sums
int8x64 = _Vector(name="int8x64")       # 64 int8 lanes: a quad's weights to 16 columns


def has_vnni() -> bool:
    """Whether the machine code Numba emits here may use AVX-512 VNNI, read by public routes:
    NUMBA_CPU_FEATURES when set (Numba then compiles for exactly those), else the host's
    features as llvmlite reports them. A target CPU named without a feature list
    (NUMBA_CPU_NAME alone) answers False: the portable code is exact on every CPU, only slower."""
    features = numba.config.CPU_FEATURES
    if features:
        flags = set(features.split(","))
        return "+avx512vnni" in flags and "+avx512bw" in flags
    if numba.config.CPU_NAME and numba.config.CPU_NAME != "host":
        return False
    host = llvm.get_host_cpu_features()
    return bool(host.get("avx512vnni", False)) and bool(host.get("avx512bw", False))


def _data_pointer(context, builder, array_type, array, offset, element):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [offset]), element.as_pointer())


@intrinsic
def zeros(typingctx):
    """An all-zero vector."""
    def codegen(context, builder, sig, args):
        return ir.Constant(_VEC, None)
    return int32x16(), codegen


def _dot4_portable(builder, acc, packed_bytes, x_bytes):
    wide = ir.VectorType(_I32, 4 * LANES)
    products = builder.mul(builder.zext(packed_bytes, wide), builder.sext(x_bytes, wide))
    total = acc
    for k in range(4):   # lane j sums products 4j .. 4j + 3
        pick = ir.Constant(ir.VectorType(_I32, LANES), [4 * j + k for j in range(LANES)])
        total = builder.add(total, builder.shuffle_vector(products, products, pick))
    return total


@intrinsic
def load_bytes(typingctx, x, off):
    """x[off : off + 64] of an int8 array, as one vector (any alignment)."""
    if not (isinstance(x, types.Array) and x.dtype == types.int8 and x.layout == "C"):
        return None
    sig = int8x64(x, off)

    def codegen(context, builder, sig, args):
        x_arr, x_off = args
        value = builder.load(_data_pointer(context, builder, sig.args[0], x_arr, x_off, _BYTES))
        value.align = 1
        return value
    return sig, codegen


def make_dot4(vnni: bool | None = None):
    """The dot4 intrinsic; ``vnni`` forces one implementation (tests), None decides by CPU."""

    @intrinsic
    def dot4(typingctx, acc, packed, w):
        if not (acc == int32x16 and isinstance(packed, types.Integer) and w == int8x64):
            return None
        sig = int32x16(int32x16, packed, int8x64)

        def codegen(context, builder, sig, args):
            acc_v, pk, w_bytes = args
            pk32 = pk                      # the low 32 bits are the four input bytes
            if pk.type.width > 32:
                pk32 = builder.trunc(pk, _I32)
            elif pk.type.width < 32:
                pk32 = builder.zext(pk, _I32)
            splat = builder.shuffle_vector(
                builder.insert_element(ir.Constant(_VEC, None), pk32, ir.Constant(_I32, 0)),
                ir.Constant(_VEC, None), ir.Constant(_VEC, [0] * LANES))
            use_vnni = has_vnni() if vnni is None else vnni
            if use_vnni:
                fn = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(_VEC, [_VEC, _VEC, _VEC]),
                    "llvm.x86.avx512.vpdpbusd.512")
                return builder.call(fn, [acc_v, splat, builder.bitcast(w_bytes, _VEC)])
            return _dot4_portable(builder, acc_v, builder.bitcast(splat, _BYTES), w_bytes)
        return sig, codegen

    return dot4


dot4 = make_dot4()


@intrinsic
def add_into(typingctx, dst, off, vec):
    """dst[off : off + 16] += vec, for an int32 or int64 array ``dst``."""
    if not (isinstance(dst, types.Array) and dst.dtype in (types.int32, types.int64)
            and dst.layout == "C" and vec == int32x16):
        return None
    sig = types.void(dst, off, vec)

    def codegen(context, builder, sig, args):
        d_arr, d_off, v = args
        width = sig.args[0].dtype.bitwidth
        lane_vec = ir.VectorType(ir.IntType(width), LANES)
        ptr = _data_pointer(context, builder, sig.args[0], d_arr, d_off, lane_vec)
        old = builder.load(ptr)
        old.align = width // 8
        add = v if width == 32 else builder.sext(v, lane_vec)
        builder.store(builder.add(old, add), ptr).align = width // 8
        return context.get_dummy_value()
    return sig, codegen
