"""Adversarial evaluation across levels: the algorithm (float), quantized and hardware (chip)
levels side by side, with the crafting source chosen apart from the evaluating level.

    spec.py          the attack, its sizes in grey levels, levels and sources, checked
    levels.py        algo / quant (torch) and hw (chipsim) behind one interface; the hw source
    integer_torch.py the chip's integer model in torch with straight-through gradients (BPDA)
    square.py        Square Attack, score-based black box (runs against the chip simulator)
    crosslevel.py    craft each input set once, evaluate it at every level that reads it
    chipmodel.py     the chip image for a model: read and matched, or compiled in memory
    inputs.py        adversarial inputs saved to and re-read from .npz
    run.py           `spikemesh attack`: load, check, run
    report.py        the Table 5-shaped text report
"""
