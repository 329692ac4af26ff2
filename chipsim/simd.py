"""Vectors for Numba kernels (16 int32 lanes, 64 int8 lanes), and the one operation the quad
kernel needs.

``dot4(acc, packed, w)``, with ``w = load_bytes(x, off)``, adds in each of 16 int32 lanes j
    sum over k < 4 of byte k of ``packed`` (unsigned) x x[off + 4 j + k] (signed int8),
which is one AVX-512 VNNI instruction (vpdpbusd: 64 multiply-adds, no saturation). With AVX2
and no VNNI it is the usual int8 idiom, per 32 bytes: vpmaddubsw (unsigned x signed bytes,
adjacent pairs summed into 16 bits) then vpmaddwd by ones (pairs of those into 32 bits). Its
16-bit pair sums saturate, so it is exact only where every |a0 w0 + a1 w1| <= 32767: flatten
uses it only for cores whose largest input and weight guarantee that. Elsewhere (ARM64, older
x86) the same sum is emitted as portable LLVM vector code: identical, only slower. Which one is
decided when Numba compiles, from the features of the CPU it compiles for (``quad_kind``;
Numba's cache keys machine code by CPU name and features, so a cached kernel never runs on
another).

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


# CPU names (NUMBA_CPU_NAME) whose instruction set includes AVX2
_AVX2_CPUS = {
    "haswell", "broadwell", "skylake", "skylake-avx512", "cascadelake", "cooperlake",
    "cannonlake", "icelake-client", "icelake-server", "tigerlake", "rocketlake", "alderlake",
    "raptorlake", "meteorlake", "arrowlake", "lunarlake", "sapphirerapids", "emeraldrapids",
    "graniterapids", "sierraforest", "grandridge", "core-avx2", "x86-64-v3", "x86-64-v4",
    "znver1", "znver2", "znver3", "znver4", "znver5", "bdver4",
}


def has_avx2() -> bool:
    """Whether the machine code Numba emits here may use AVX2, read as has_vnni reads VNNI; a
    target CPU named without a feature list counts by its name (NUMBA_CPU_NAME=haswell: yes)."""
    features = numba.config.CPU_FEATURES
    if features:
        return "+avx2" in set(features.split(","))
    if numba.config.CPU_NAME and numba.config.CPU_NAME != "host":
        return numba.config.CPU_NAME in _AVX2_CPUS
    return bool(llvm.get_host_cpu_features().get("avx2", False))


QUAD_NAMES = {"vnni": "AVX-512 VNNI", "avx2": "AVX2 (vpmaddubsw + vpmaddwd)",
              "portable": "portable-vector"}


def quad_kind() -> str:
    """How dot4 is emitted here: "vnni", "avx2" (16-bit pair sums: see the module's note) or
    "portable"."""
    if has_vnni():
        return "vnni"
    return "avx2" if has_avx2() else "portable"


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


def _dot4_avx2(builder, acc, packed_bytes, x_bytes):
    """vpmaddubsw then vpmaddwd by ones on each 32-byte half; lane j of each half sums bytes
    4j .. 4j + 3 as vpdpbusd does. The 16-bit pair sums saturate (see the module's note)."""
    half_bytes = ir.VectorType(_I8, 32)
    i16 = ir.VectorType(ir.IntType(16), 16)
    i32x8 = ir.VectorType(_I32, 8)
    maddubs = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(i16, [half_bytes, half_bytes]), "llvm.x86.avx2.pmadd.ub.sw")
    maddwd = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(i32x8, [i16, i16]), "llvm.x86.avx2.pmadd.wd")
    ones = ir.Constant(i16, [1] * 16)
    halves = []
    for h in range(2):
        pick = ir.Constant(ir.VectorType(_I32, 32), list(range(32 * h, 32 * h + 32)))
        a = builder.shuffle_vector(packed_bytes, packed_bytes, pick)
        w = builder.shuffle_vector(x_bytes, x_bytes, pick)
        halves.append(builder.call(maddwd, [builder.call(maddubs, [a, w]), ones]))
    both = builder.shuffle_vector(halves[0], halves[1], ir.Constant(_VEC, list(range(LANES))))
    return builder.add(acc, both)


def make_dot4(kind: str | None = None):
    """The dot4 intrinsic; ``kind`` ("vnni", "avx2", "portable") forces one implementation
    (tests), None decides by CPU (quad_kind)."""

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
            how = quad_kind() if kind is None else kind
            if how == "vnni":
                fn = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(_VEC, [_VEC, _VEC, _VEC]),
                    "llvm.x86.avx512.vpdpbusd.512")
                return builder.call(fn, [acc_v, splat, builder.bitcast(w_bytes, _VEC)])
            if how == "avx2":
                return _dot4_avx2(builder, acc_v, builder.bitcast(splat, _BYTES), w_bytes)
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
