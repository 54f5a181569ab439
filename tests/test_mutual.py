"""Networks trained side by side on the same batches (`members`, deep mutual learning)."""

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from captcha_robustness.data.datamodule import CaptchaDataModule
from captcha_robustness.data.digits import Mnist5kDigits
from captcha_robustness.errors import ConfigError
from captcha_robustness.models.multihead_cnn import MultiHeadCNN
from captcha_robustness.models.mutual import MutualEnsemble, log_mean_softmax, mutual_loss
from captcha_robustness.models.module import CaptchaModule

MULTIHEAD = {"_target_": "captcha_robustness.models.multihead_cnn.MultiHeadCNN", "num_digits": 2,
             "height": 100, "width": 110}
ADAMW = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 0.003}


def cross_entropy(logits, labels):
    return F.cross_entropy(logits.reshape(-1, 10), labels.reshape(-1))


def test_without_mutual_weight_the_loss_is_the_members_cross_entropies_summed():
    torch.manual_seed(0)
    logits, labels = torch.randn(3, 8, 4, 10), torch.randint(0, 10, (8, 4))
    by_hand = sum(cross_entropy(logits[k], labels) for k in range(3))
    assert mutual_loss(logits, labels, weight=0.0).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_members_that_agree_pay_no_mutual_term():
    torch.manual_seed(0)
    one, labels = torch.randn(8, 4, 10), torch.randint(0, 10, (8, 4))
    logits = torch.stack([one, one])
    assert mutual_loss(logits, labels, weight=5.0).item() == pytest.approx(2 * cross_entropy(one, labels).item(),
                                                                          rel=1e-6)


def test_the_mutual_term_is_each_members_kl_divergence_from_the_other():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 8, 4, 10) * 3, torch.randint(0, 10, (8, 4))
    p, log_p = logits.softmax(-1), logits.log_softmax(-1)
    # KL(p_other || p_own), summed over classes, averaged over the 32 digits
    kl = [(p[1 - k] * (log_p[1 - k] - log_p[k])).sum(-1).mean() for k in range(2)]
    by_hand = cross_entropy(logits[0], labels) + cross_entropy(logits[1], labels) + 0.5 * (kl[0] + kl[1])
    assert mutual_loss(logits, labels, weight=0.5).item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert kl[0] > 0 and kl[1] > 0


def test_each_member_learns_only_from_its_own_loss():
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 8, 4, 10, requires_grad=True), torch.randint(0, 10, (8, 4))
    mutual_loss(logits, labels, weight=1.0).backward()
    fixed_target = logits[1].detach().softmax(-1)
    own = logits[0].detach().clone().requires_grad_()
    alone = cross_entropy(own, labels) + (fixed_target * (fixed_target.log() - own.log_softmax(-1))).sum(-1).mean()
    alone.backward()
    assert torch.allclose(logits.grad[0], own.grad, atol=1e-6)


def test_the_ensemble_reads_the_log_of_its_members_averaged_softmax():
    torch.manual_seed(0)
    networks = [MultiHeadCNN(num_digits=2).eval() for _ in range(2)]
    ensemble = MutualEnsemble(networks).eval()
    images = torch.rand(4, 1, 100, 110)
    with torch.no_grad():
        by_hand = (networks[0](images).softmax(-1) + networks[1](images).softmax(-1)) / 2
        reading = ensemble(images)
    assert reading.shape == (4, 2, 10)
    assert torch.allclose(reading.exp(), by_hand, atol=1e-6)
    assert torch.allclose(log_mean_softmax(torch.zeros(3, 1, 10)).exp(), torch.full((1, 10), 0.1))


def test_one_member_is_the_plain_network_with_the_same_weights():
    torch.manual_seed(0)
    plain = CaptchaModule(MULTIHEAD, ADAMW, num_digits=2)
    torch.manual_seed(0)
    pair = CaptchaModule(MULTIHEAD, ADAMW, num_digits=2, members=2)
    assert isinstance(plain.model, MultiHeadCNN)
    assert isinstance(pair.model, MutualEnsemble) and len(pair.model.members) == 2
    first = pair.model.members[0].state_dict()
    assert all(torch.equal(value, first[name]) for name, value in plain.model.state_dict().items())
    second = pair.model.members[1].state_dict()
    assert not all(torch.equal(value, second[name]) for name, value in first.items())  # their own start


def test_a_pair_really_learns_and_comes_back_from_its_checkpoint(tmp_path):
    pl.seed_everything(0)
    dm = CaptchaDataModule(Mnist5kDigits(), render={"num_digits": 2}, train_size=32 * 250, val_size=256,
                           test_size=512, batch_size=32)
    solver = CaptchaModule(MULTIHEAD, ADAMW, num_digits=2, members=2, mutual_weight=1.0)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                         default_root_dir=tmp_path)
    trainer.fit(solver, datamodule=dm)
    trainer.test(solver, datamodule=dm, verbose=False)
    assert trainer.callback_metrics["test/acc_mean"] > 0.75  # chance is 0.1
    assert trainer.callback_metrics["test/acc_seq"] > 0.5  # chance is 0.01
    trainer.save_checkpoint(tmp_path / "pair.ckpt")
    loaded = CaptchaModule.load_from_checkpoint(tmp_path / "pair.ckpt").eval()
    images = torch.rand(4, 1, 100, 110)
    with torch.no_grad():
        assert torch.allclose(loaded(images), solver.eval()(images), atol=1e-6)
    assert len(loaded.model.members) == 2


@pytest.mark.parametrize("members", [0, 1.5, True, "2"])
def test_bad_members_name_the_field(members):
    with pytest.raises(ConfigError, match="^training.members: must be an integer >= 1"):
        CaptchaModule(MULTIHEAD, ADAMW, num_digits=2, members=members)


@pytest.mark.parametrize("weight", [-0.5, True, "1"])
def test_a_bad_mutual_weight_names_the_field(weight):
    with pytest.raises(ConfigError, match="^training.mutual_weight: must be a number >= 0"):
        CaptchaModule(MULTIHEAD, ADAMW, num_digits=2, members=2, mutual_weight=weight)
