"""`--device cuda`: the same engine on a GPU. Skipped where torch sees no CUDA device (CI and
the development machines have none; the shipped models were trained this way on an H200)."""

import dataclasses

import pytest
import torch

from training.models import ModelConfig, build_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_gpu_logits_and_gradients_match_the_cpu(encoding):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    cfg = ModelConfig(arch="vgg5", timesteps=3, encoding=encoding, weight_bits=4, dropout=0.0,
                      trainable_neurons=True)
    cpu = build_model(cfg)
    gpu = build_model(cfg).cuda()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.rand(4, 3, 32, 32)
    y = torch.tensor([0, 1, 2, 3])
    g1 = torch.Generator().manual_seed(5)
    g2 = torch.Generator().manual_seed(5)      # rate draws come from a CPU generator on both
    out_cpu = cpu(x, generator=g1)
    out_gpu = gpu(x.cuda(), generator=g2)
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, rtol=1e-4, atol=1e-4)
    torch.nn.functional.cross_entropy(out_cpu, y).backward()
    torch.nn.functional.cross_entropy(out_gpu, y.cuda()).backward()
    for (name, p_cpu), p_gpu in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        torch.testing.assert_close(p_gpu.grad.cpu(), p_cpu.grad, rtol=1e-3, atol=1e-4, msg=name)


def test_train_on_the_gpu_resumes_on_the_cpu(tmp_path):
    from training.checkpoint import load_checkpoint, read_payload
    from training.trainer import TrainConfig, train

    out = tmp_path / "m.pt"
    cfg = TrainConfig(model=ModelConfig(arch="vgg5", timesteps=2, weight_bits=4),
                      dataset="synthetic", train_size=256, val_size=128, eval_size=128,
                      ann_epochs=1, epochs=1, batch_size=64, device="cuda", out=str(out))
    train(cfg, progress=False, log=lambda *_: None)
    state = read_payload(out)["training"]["optimizer"]["state"]
    assert state and all(t.device.type == "cpu" for s in state.values() for t in s.values()
                         if isinstance(t, torch.Tensor))
    load_checkpoint(out)
    more = dataclasses.replace(cfg, epochs=2, device="cpu", resume=True)
    assert train(more, progress=False, log=lambda *_: None)["epoch"] == 2
