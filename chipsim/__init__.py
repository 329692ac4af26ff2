"""chipsim: runs a chip image the way the chip would. Reads only the image; imports no torch.

    machine.py   the image loaded into per-core arrays (neurons, axons, crossbars, routes)
    flat.py      the machine flattened into the contiguous arrays the kernels take
    kernels.py   Numba kernels: integer LIF, crossbar fan-out, partial sums (simd.py: VNNI)
    chip.py      Chip: the functional model, batches of images -> spikes, logits, counters
    noc.py       the cycle-level 2D-mesh network-on-chip model (routers, buffers, links)
    simulate.py  a dataset through the chip and the NoC, batch by batch
    report.py    the records: per core, per link, per router, cycles, energy
    jit.py       how the kernels are compiled and cached (the cache key covers every source)

The functional model must match compiler.reference bit for bit; timing comes only from the NoC.
"""
