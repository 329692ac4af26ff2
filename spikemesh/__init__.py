"""spikemesh: the command line and the small pieces every stage shares.

The pipeline itself lives in three sibling packages, one job each:
``training`` (PyTorch models, data, attacks), ``compiler`` (checkpoint -> chip image) and
``chipsim`` (chip image -> spikes, cycles, energy). This package must stay import-light:
chipsim imports it and never imports torch.
"""

__version__ = "0.1.0"
