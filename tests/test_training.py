"""The trainer runs on real frames, checkpoints atomically and resumes."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from ui2c.training.trainer import TrainConfig, lambda_for_qp, train, yuv_mse

DEMO = Path(__file__).resolve().parents[1] / "ui2c" / "assets" / "bbb_320x180_16f.y4m"


def test_lambda_is_geometric_over_qp_and_mse_weights_luma_six_to_one():
    assert lambda_for_qp(0) == 32.0 and math.isclose(lambda_for_qp(63), 2048.0)
    assert math.isclose(lambda_for_qp(10) / lambda_for_qp(9), lambda_for_qp(70) / lambda_for_qp(69))
    x = torch.zeros(1, 3, 4, 4)
    err = torch.tensor([0.1, 0.2, 0.4]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    assert math.isclose(float(yuv_mse(x + err, x)), (6 * 0.01 + 0.04 + 0.16) / 8, rel_tol=1e-6)


def test_train_checkpoints_and_resumes(tmp_path):
    cfg = TrainConfig(preset="ui2c-s", video=str(DEMO), out_dir=str(tmp_path), minutes=0.02, batch=1, crop=64,
                      window_stride=5, checkpoint_every=1)
    ckpt = train(cfg)
    first = torch.load(ckpt, weights_only=False)
    done = first["state"]["iteration"]
    assert done >= 1 and not (tmp_path / "checkpoint.tmp").exists()
    cfg.minutes = first["state"]["elapsed_s"] / 60 + 0.01
    second = torch.load(train(cfg), weights_only=False)
    assert second["state"]["iteration"] > done
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["it"] for r in records] == list(range(1, second["state"]["iteration"] + 1))
    assert all(math.isfinite(r["loss"]) and r["bpp"] > 0 for r in records)
    changed = any(not torch.equal(a, b) for a, b in zip(first["model"].values(), second["model"].values()))
    assert changed, "resumed training did not update the weights"
