"""chipsim: runs a chip image the way the chip would. Reads only the image; imports no torch.

``chipsim.machine`` loads an image into flat per-core arrays; ``chipsim.functional`` steps the
cores (integer LIF, crossbar fan-out, partial sums, pool merge by axon sharing) and must match
the compiler's integer reference bit for bit.
"""
