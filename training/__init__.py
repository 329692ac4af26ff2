"""training: the algorithm level. Data, SNN models, quantization-aware and noise training,
checkpoints and adversarial attacks, all in PyTorch."""
