"""Models, metrics and the LightningModule, in process."""

import hydra
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from captcha_robustness.commands.cli import CONFIG_DIR
from captcha_robustness.data.datamodule import CaptchaDataModule
from captcha_robustness.data.digits import Mnist5kDigits
from captcha_robustness.models.multihead_cnn import GlimpseHeads, MultiHeadCNN
from captcha_robustness.models.seed_cnn import SeedCNN
from captcha_robustness.errors import ConfigError
from captcha_robustness.models.module import (CaptchaMetrics, CaptchaModule, check_shifts, confidence,
                                              digit_strings, shifted)

MULTIHEAD = {"_target_": "captcha_robustness.models.multihead_cnn.MultiHeadCNN", "num_digits": 2,
             "height": 100, "width": 110}
ADAMW = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 0.003}


@pytest.mark.parametrize("model", [SeedCNN, MultiHeadCNN])
@pytest.mark.parametrize("num_digits, height, width", [(4, 100, 110), (5, 64, 160)])
def test_one_head_per_digit(model, num_digits, height, width):
    net = model(num_digits=num_digits, height=height, width=width).eval()
    assert net(torch.rand(3, 1, height, width)).shape == (3, num_digits, 10)


@pytest.mark.parametrize("name", ["multihead_cnn", "multihead_cnn_large", "multihead_cnn_hires", "multihead_cnn_deep",
                                  "multihead_cnn_glimpse", "seed_cnn"])
def test_every_model_config_builds_from_the_data_config(name):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"model={name}", "data.render.num_digits=5"])
    net = hydra.utils.instantiate(cfg.model).eval()
    assert net(torch.rand(2, 1, 100, 110)).shape == (2, 5, 10)
    if name in ("multihead_cnn_large", "multihead_cnn_hires"):
        assert [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)] == [16, 32, 64, 128, 128]
    if name == "multihead_cnn_deep":
        assert [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)] == [16, 32, 48, 64, 128, 128]
    if name in ("multihead_cnn_hires", "multihead_cnn_deep"):  # every column reaches the first convolution
        assert net.trunk[0].kernel_size == (4, 1)
    if name == "multihead_cnn_glimpse":  # the deep trunk, ending at 7 x 14, read by 4 glimpses per digit
        assert [m.out_channels for m in net.trunk if isinstance(m, torch.nn.Conv2d)] == [16, 32, 48, 64, 128, 128]
        assert net.trunk(torch.rand(2, 1, 100, 110)).shape[2:] == (7, 14)
        assert net.glimpse_heads.attend.out_channels == 5 * 4
    else:
        assert getattr(net, "glimpse_heads", None) is None


def test_glimpse_model_parameter_count():
    assert sum(p.numel() for p in MultiHeadCNN(input_pool=(4, 1), channels=(16, 32, 48, 64, 128, 128),
                                               strides=((1, 2), 2, 1, 1, 2, 1), hidden=384,
                                               glimpses=4).parameters()) == 475_530


def test_glimpses_start_on_their_digits_slice_of_the_width():
    heads = GlimpseHeads(channels=8, rows=3, cols=16, num_digits=4, glimpses=2, hidden=16, dropout=0.0)
    torch.nn.init.zeros_(heads.attend.weight)  # so only the starting bias decides
    weights = heads.attention(torch.rand(5, 8, 3, 16)).reshape(5, 4, 2, 3, 16)
    assert torch.allclose(weights.sum((-2, -1)), torch.ones(5, 4, 2))
    per_column = weights.sum(-2)  # (batch, digit, glimpse, column)
    for digit in range(4):
        assert (per_column[:, digit, :, 4 * digit:4 * digit + 4].sum(-1) > 0.5).all()


def test_glimpse_heads_share_one_classifier_across_positions():
    heads = GlimpseHeads(channels=8, rows=3, cols=16, num_digits=4, glimpses=2, hidden=16, dropout=0.0).eval()
    with torch.no_grad():
        for same_for_every_digit in (heads.position, heads.cell_bias, heads.attend.weight, heads.attend.bias):
            same_for_every_digit.zero_()  # so every digit pools the same features the same way
        logits = heads(torch.rand(5, 8, 3, 16))
    assert logits.shape == (5, 4, 10)
    assert torch.allclose(logits, logits[:, :1].expand(-1, 4, -1), atol=1e-6)


@pytest.mark.parametrize("name, kind, lr", [("adamw", torch.optim.AdamW, 0.003), ("sgd", torch.optim.SGD, 0.1)])
def test_every_optimizer_config_builds_and_sets_the_schedules_peak(name, kind, lr):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"optimizer={name}"])
    optimizer = hydra.utils.instantiate(cfg.optimizer)(params=[torch.nn.Parameter(torch.zeros(1))])
    assert type(optimizer) is kind and optimizer.defaults["lr"] == lr
    if name == "sgd":
        assert optimizer.defaults["nesterov"] and optimizer.defaults["momentum"] == 0.9
    assert cfg.scheduler.max_lr == lr


def test_metrics_match_a_hand_computation():
    labels = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8], [9, 0, 1, 2], [3, 3, 3, 3]])
    preds = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 8], [0, 0, 1, 0], [3, 3, 3, 3]])
    metrics = CaptchaMetrics(4)
    metrics.update(preds[:2], labels[:2])  # streamed in two batches
    metrics.update(preds[2:], labels[2:])
    values = {k: v.item() for k, v in metrics.compute().items()}
    # position 1: 3/4 right; 2: 4/4; 3: 3/4; 4: 3/4; whole CAPTCHAs: rows 0 and 3
    assert values["acc_digit_1"] == pytest.approx(0.75)
    assert values["acc_digit_2"] == pytest.approx(1.0)
    assert values["acc_digit_3"] == pytest.approx(0.75)
    assert values["acc_digit_4"] == pytest.approx(0.75)
    assert values["acc_mean"] == pytest.approx(13 / 16)
    assert values["acc_seq"] == pytest.approx(0.5)


def test_predictions_are_strings_with_a_whole_answer_confidence():
    logits = torch.full((2, 3, 10), -20.0)
    logits[0, :, 7] = 20.0  # certain "777"
    logits[1, :, 0] = 0.0  # "000" with ties between 0 and 1 ...
    logits[1, :, 1] = 0.0
    assert digit_strings(logits.argmax(-1)) == ["777", "000"]
    assert confidence(logits).tolist() == pytest.approx([1.0, 0.125])  # ... 0.5 per head


@pytest.mark.parametrize("glimpses", [0, 4])
def test_a_few_hundred_steps_really_learn(tmp_path, glimpses):
    pl.seed_everything(0)
    dm = CaptchaDataModule(Mnist5kDigits(), render={"num_digits": 2}, train_size=32 * 250, val_size=256,
                           test_size=512, batch_size=32)
    solver = CaptchaModule({**MULTIHEAD, "glimpses": glimpses}, ADAMW, num_digits=2)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                         default_root_dir=tmp_path)
    trainer.fit(solver, datamodule=dm)
    train_loss = trainer.callback_metrics["train/loss_epoch"].item()
    trainer.test(solver, datamodule=dm, verbose=False)
    metrics = trainer.callback_metrics
    assert metrics["test/acc_mean"] > 0.75  # chance is 0.1
    assert metrics["test/acc_seq"] > 0.5  # chance is 0.01
    assert train_loss < 2.0  # started near ln(10) = 2.3
    assert len(solver.test_records) == 512 // 32


def test_inconsistent_model_config_names_the_fields():
    with pytest.raises(ConfigError, match="^model.channels, model.strides: must have the same length"):
        MultiHeadCNN(channels=(8, 16), strides=(2,))


@pytest.mark.parametrize("glimpses", [-1, 1.5, True])
def test_bad_glimpses_name_the_field(glimpses):
    with pytest.raises(ConfigError, match="^model.glimpses: must be an integer >= 0"):
        MultiHeadCNN(glimpses=glimpses)


def test_label_smoothing_softens_only_the_training_loss():
    torch.manual_seed(0)
    batch = {"image": torch.zeros(8, 1, 100, 110), "label": torch.randint(0, 10, (8, 2))}
    logits = torch.randn(8, 2, 10) + 6 * F.one_hot(batch["label"], 10)  # confident, mostly right
    log_p, target = logits.reshape(-1, 10).log_softmax(-1), batch["label"].reshape(-1)
    plain_by_hand = -log_p.gather(1, target[:, None]).mean()
    smooth_by_hand = (-(0.8 * log_p.gather(1, target[:, None]).squeeze(1) + 0.02 * log_p.sum(-1))).mean()
    losses = {}
    for name, smoothing in (("plain", 0.0), ("smooth", 0.2)):
        solver = CaptchaModule(MULTIHEAD, ADAMW, num_digits=2, label_smoothing=smoothing)
        solver.forward = lambda images: logits
        solver.log = lambda key, value, **kwargs: losses.update({(name, key): value.item()})
        for stage in ("train", "val"):
            solver._step(batch, stage)
    assert losses["smooth", "train/loss"] == pytest.approx(smooth_by_hand.item(), rel=1e-5)
    assert losses["smooth", "train/loss"] > 2 * plain_by_hand.item()  # smoothing punishes confidence
    for key in (("plain", "train/loss"), ("plain", "val/loss"), ("smooth", "val/loss")):
        assert losses[key] == pytest.approx(plain_by_hand.item(), rel=1e-5)


@pytest.mark.parametrize("value", [-0.1, 1.0, "0.1", True])
def test_a_bad_label_smoothing_names_the_field(value):
    with pytest.raises(ConfigError, match=r"^training.label_smoothing: must be a number in \[0, 1\)"):
        CaptchaModule(MULTIHEAD, ADAMW, num_digits=2, label_smoothing=value)


def test_shifted_moves_the_image_and_fills_the_edge_with_background():
    images = torch.arange(1, 13, dtype=torch.float32).reshape(1, 1, 3, 4)
    assert torch.equal(shifted(images, 0, 0), images)
    right = shifted(images, 0, 1)
    assert torch.equal(right[..., 1:], images[..., :-1]) and (right[..., 0] == 0).all()
    up_left = shifted(images, -2, -3)
    assert up_left[0, 0].tolist() == [[12, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_test_shifts_average_the_softmax_of_the_shifted_copies():
    torch.manual_seed(0)
    solver = CaptchaModule(MULTIHEAD, ADAMW, num_digits=2).eval()
    images = torch.rand(4, 1, 100, 110)
    with torch.no_grad():
        plain = solver(images)
        solver.test_shifts = [(0, 0)]  # a copy identical to the image: the same prediction
        assert torch.allclose(solver.averaged_reading(images), plain.log_softmax(-1), atol=1e-5)
        solver.test_shifts = [(0, 3), (-2, 0)]
        by_hand = (plain.softmax(-1) + solver(shifted(images, 0, 3)).softmax(-1)
                   + solver(shifted(images, -2, 0)).softmax(-1)) / 3
        assert torch.allclose(solver.averaged_reading(images).exp(), by_hand, atol=1e-6)


def test_test_members_average_every_network_over_every_copy():
    torch.manual_seed(0)
    solver, other = (CaptchaModule(MULTIHEAD, ADAMW, num_digits=2).eval() for _ in range(2))
    images = torch.rand(4, 1, 100, 110)
    with torch.no_grad():
        solver.test_members.append(other.model)
        by_hand = (solver(images).softmax(-1) + other(images).softmax(-1)) / 2
        assert torch.allclose(solver.averaged_reading(images).exp(), by_hand, atol=1e-6)
        solver.test_shifts = [(0, 3)]
        copy = shifted(images, 0, 3)
        by_hand = sum(net(x).softmax(-1) for net in (solver, other) for x in (images, copy)) / 4
        assert torch.allclose(solver.averaged_reading(images).exp(), by_hand, atol=1e-6)


@pytest.mark.parametrize("shifts", [3, [[1]], [[0, 1.5]], [[0, 110]], [[True, 0]]])
def test_bad_test_shifts_name_the_field(shifts):
    with pytest.raises(ConfigError, match=r"^test_shifts: must be a list of \[dy, dx\] pairs"):
        check_shifts(shifts, 100, 110)
