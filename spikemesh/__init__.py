"""spikemesh: the top of the pipeline. The command line, the demo, the benchmarks and the
cross-checks that join the stages (compile --verify, simulate --verify).

The stages live in sibling packages, one job each, and import only the leaf ``artifacts``:
``training`` (PyTorch models, data, attacks), ``compiler`` (checkpoint -> chip image) and
``chipsim`` (chip image -> spikes, cycles, energy). Only this package may import all of them.
"""

from artifacts import __version__

__all__ = ["__version__"]
