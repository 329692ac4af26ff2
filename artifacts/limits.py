"""Upper bounds on every size a user can ask for, in one place.

They keep absurd inputs (a 10^6 x 10^6 mesh, T = 10^6, a 10^8-flit buffer) from ending in an
out-of-memory kill or an integer overflow deep inside a kernel: such a value is refused where
it is read, in one sentence. Each bound is far above any chip or network this project models.
"""

from __future__ import annotations

MAX_TIMESTEPS = 1024            # time steps per inference
MAX_WEIGHT_BITS = 8             # the widest weight code a synapse stores
MAX_ROUTERS = 1 << 16           # routers (cores) on one board
MAX_DIM = 1 << 24               # one dimension of a layer shape
MAX_LAYER_NEURONS = 1 << 26     # values in one layer's input or output
MAX_WEIGHT_SHIFT = 32           # integer weight = units << shift
MAX_ABS_BIAS = 1 << 40          # graded first layer: integer bias per neuron
MAX_ABS_GAIN = 1 << 24          # graded first layer: integer gain per input channel

# chip spec fields: (lowest, highest). Ints unless the bound is a float. The NoC's packed bit
# fields have tighter limits of their own (artifacts.mesh), checked by the compiler's design
# rules with a message that says which field overflows.
SPEC_BOUNDS: dict[str, tuple[float, float]] = {
    "mesh.cores_x": (1, 256), "mesh.cores_y": (1, 256),
    "board.chips_x": (1, 64), "board.chips_y": (1, 64),
    "core.neurons": (1, 1 << 16), "core.axons": (1, 1 << 16), "core.synapse_bits": (1, 1 << 32),
    "arithmetic.max_weight_bits": (1, MAX_WEIGHT_BITS), "arithmetic.membrane_bits": (2, 32),
    "arithmetic.threshold_bits": (1, 31), "arithmetic.leak_frac_bits": (0, 16),
    "noc.buffer_depth": (1, 1024), "noc.link_flits_per_cycle": (1, 1 << 16),
    "noc.hop_cycles": (1, 1 << 24), "noc.chip_hop_cycles": (1, 1 << 24),
    "noc.router_cycles": (0, 1 << 24), "noc.credit_cycles": (1, 1 << 24),
    "energy.pj_per_sop": (0.0, 1e9), "energy.pj_per_hop": (0.0, 1e9),
    "energy.pj_per_chip_hop": (0.0, 1e9),
}
