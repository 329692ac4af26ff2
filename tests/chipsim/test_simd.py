"""The vector operations of the quad kernel: the VNNI instruction and its portable stand-in
compute the same sums, and both match numpy."""

import numpy as np
import pytest
from numba import njit

from chipsim import simd


def _kernel(dot4):
    @njit
    def run(dst, packed, x, offsets):
        # dst[16 i : 16 i + 16] += dot4 over x at offsets[i], one vector per offset
        for i in range(offsets.shape[0]):
            w = simd.load_bytes(x, offsets[i])
            simd.add_into(dst, simd.LANES * i, dot4(simd.zeros(), packed[i], w))
    return run


def _expected(dst, packed, x, offsets):
    inputs = packed.view(np.uint8).reshape(-1, 4).astype(np.int64)           # (n, 4)
    weights = np.stack([x[o:o + 4 * simd.LANES] for o in offsets]).astype(np.int64)
    sums = (weights.reshape(len(offsets), simd.LANES, 4) * inputs[:, None, :]).sum(axis=2)
    return dst + sums.ravel()


def _cases(rng):
    x = rng.integers(-128, 128, 4096, dtype=np.int8)
    x[:64] = -128                                   # the extremes: 4 x 255 x -128 per lane
    packed = rng.integers(0, 2**32, 40, dtype=np.uint64).astype(np.uint32)
    packed[0] = 0xFFFFFFFF
    offsets = np.concatenate([[0], rng.integers(0, 4096 - 64, 39)]).astype(np.int64)  # unaligned
    return packed, x, offsets


@pytest.mark.parametrize("kind", ["portable", "vnni"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_dot4_matches_numpy(kind, dtype):
    if kind == "vnni" and not simd.has_vnni():
        pytest.skip("this CPU has no AVX-512 VNNI (the portable version is tested)")
    packed, x, offsets = _cases(np.random.default_rng(0))
    dst = np.random.default_rng(1).integers(-1000, 1000, simd.LANES * len(offsets)).astype(dtype)
    expected = _expected(dst, packed, x, offsets)
    _kernel(simd.make_dot4(kind))(dst, packed, x, offsets)
    np.testing.assert_array_equal(dst, expected)
    assert dst.min() < -100_000                     # the extreme case was in there


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_avx2_dot4_matches_numpy_where_no_pair_sum_saturates(dtype):
    if not simd.has_avx2():
        pytest.skip("this CPU has no AVX2 (the portable version is tested)")
    rng = np.random.default_rng(2)
    packed, x, offsets = _cases(rng)
    # the flatten rule: 2 x largest input x largest |weight| <= 32767. Inputs up to 255 with
    # weights in -64..63 stay inside it (2 x 255 x 64 = 32640), the extremes included
    x = np.clip(x, -64, 63).astype(np.int8)
    x[:64] = -64
    dst = rng.integers(-1000, 1000, simd.LANES * len(offsets)).astype(dtype)
    expected = _expected(dst, packed, x, offsets)
    _kernel(simd.make_dot4("avx2"))(dst, packed, x, offsets)
    np.testing.assert_array_equal(dst, expected)
    # past the rule it does saturate: why flatten refuses such cores
    big = np.full(64 * 4, -128, np.int8)
    out = np.zeros(simd.LANES, dtype)
    _kernel(simd.make_dot4("avx2"))(out, np.array([0xFFFFFFFF], np.uint32), big,
                                    np.zeros(1, np.int64))
    assert out[0] == 2 * -32768 != 4 * 255 * -128


def test_load_bytes_accepts_only_int8_weights():
    from numba.core.errors import TypingError
    with pytest.raises(TypingError):
        _kernel(simd.dot4)(np.zeros(16, np.int32), np.zeros(1, np.uint32),
                           np.zeros(64, np.int16), np.zeros(1, np.int64))
