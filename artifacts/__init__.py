"""artifacts: what the pipeline's stages hand each other, and nothing else.

The leaf of the import graph (numpy only; never torch, numba or any stage's code). It defines:

- ``intmath``: the integer arithmetic of the chip (weights, membranes, leak, reset, pooling,
  input events), the one home every stage and both references use;
- ``layers``: the checkpoint's explicit layer list (training writes it, the compiler reads it);
- ``chipimage``: the chip image container and its self-description (compiler -> chipsim);
- ``hostinput``: the host side of the chip's input protocol (the events an image becomes);
- ``mesh``: mesh geometry, port numbering and the NoC's packed bit fields;
- ``errors`` and ``atomic``: the user-error type and atomic file output.

    artifacts  <-  training, compiler, chipsim  <-  spikemesh (CLI, demo, bench, cross-checks)
"""

__version__ = "0.1.0"
