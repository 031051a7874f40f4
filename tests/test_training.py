"""Trainer pieces: anchor qp tables, per-sample coding, camera motion, data file, resumable state."""
from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ui2c.models.checkpoint import load_weights
from ui2c.entropy import latent
from ui2c.errors import CheckpointError
from ui2c.models.ops import QP_ROWS, slot_scale
from ui2c.models.presets import build_model
from ui2c.training import qp as qp_anchors
from ui2c.training import state as state_mod
from ui2c.training import trainer as trainer_mod
from ui2c.training import average as average_mod
from ui2c.training.average import WeightAverage
from ui2c.training.data import Dataset, WindowSampler, chroma_as_420, load_dataset
from ui2c.training.motion import camera_path
from ui2c.training.trainer import TrainConfig, lambda_for_qp, train, yuv_mse
from ui2c.training.trainer import _build as trainer_build
from ui2c.training.unit import _gaussian_bits, code_pair, sample_scale

DEMO = Path(__file__).resolve().parents[1] / "ui2c" / "assets" / "bbb_320x180_16f.y4m"
SHIPPED = DEMO.with_name("ui2c-s.pt")


def test_lambda_is_geometric_and_mse_weights_luma_six_to_one():
    assert math.isclose(float(lambda_for_qp(0)), 2.0) and math.isclose(float(lambda_for_qp(63)), 8192.0, rel_tol=1e-5)
    assert math.isclose(float(lambda_for_qp(10) / lambda_for_qp(9)), float(lambda_for_qp(70) / lambda_for_qp(69)), rel_tol=1e-5)
    x = torch.zeros(1, 3, 4, 4)
    err = torch.tensor([0.1, 0.2, 0.4]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    assert math.isclose(float(yuv_mse(x + err, x)), (6 * 0.01 + 0.04 + 0.16) / 8, rel_tol=1e-6)


def test_anchor_tables_interpolate_geometrically_between_anchors():
    w = qp_anchors.interpolation_matrix(QP_ROWS, 8)
    assert torch.allclose(w.sum(1), torch.ones(QP_ROWS)) and w[0, 0] == 1 and w[-1, -1] == 1
    log_anchors = torch.log(torch.tensor([1.0, 2, 4, 8, 16, 32, 64, 128])).view(8, 1, 1, 1)
    table = qp_anchors.AnchorTable(dim=0, log=True)(log_anchors).flatten()
    assert math.isclose(float(table[0]), 1.0, rel_tol=1e-5) and math.isclose(float(table[-1]), 128.0, rel_tol=1e-5)
    ratios = table[1:] / table[:-1]
    assert torch.allclose(ratios, ratios[0], rtol=1e-4)  # evenly spaced doubling anchors: one constant ratio


def test_anchor_model_exports_the_plain_layout_and_recovers_interpolated_tables():
    model = build_model("ui2c-s")
    plain_shapes = {k: v.shape for k, v in model.state_dict().items()}
    with torch.no_grad():  # a table that is exactly an interpolation of anchors is fitted exactly
        model.q_encoder.copy_(torch.exp(torch.linspace(-1, 1, QP_ROWS)).view(-1, 1, 1, 1).expand_as(model.q_encoder))
    target = model.q_encoder.detach().clone()
    qp_anchors.attach(model)
    assert model.parametrizations.q_encoder.original.shape[0] == qp_anchors.ANCHORS
    assert torch.allclose(model.q_encoder, target, rtol=1e-4)
    plain = qp_anchors.plain_state_dict(model)
    assert {k: v.shape for k, v in plain.items()} == plain_shapes
    assert torch.allclose(plain["q_encoder"], target, rtol=1e-4)
    assert model.q_feature.shape == plain_shapes["q_feature"]  # the training model still works afterwards


def test_one_batch_of_spread_qps_trains_every_anchor():
    torch.manual_seed(0)
    model = qp_anchors.attach(build_model("ui2c-s"))
    frames, ref = torch.rand(4, 6, 64, 64), model.adapt_frame(torch.zeros(4, 3, 64, 64))
    qps = torch.tensor([[3, 11], [22, 26], [40, 44], [60, 68]])
    out = code_pair(model, frames, ref, qps)
    (out["bits"].sum() + sum(x.sum() for x in out["recon"])).backward()
    for name in ("q_encoder", "q_decoder", "q_feature"):
        grad = getattr(model.parametrizations, name).original.grad.flatten(1).abs().sum(1)
        assert (grad > 0).all(), (name, grad)


def test_per_sample_lookup_and_coding_match_the_codec_stages_for_one_qp():
    """The training graph, run for one sample, reconstructs what the codec's own stages
    and latent codec reconstruct (nothing skipped, so every residual is rounded)."""
    model = build_model("ui2c-s").eval()
    with torch.no_grad():
        model.q_encoder.uniform_(0.5, 2.0)
    qps = torch.tensor([[5, 13], [30, 34]])
    for i in range(2):
        assert torch.equal(sample_scale(model.q_encoder, qps)[i : i + 1], slot_scale(model.q_encoder, qps[i]))
    torch.manual_seed(1)
    frames, ref, qp = torch.rand(1, 6, 64, 64), torch.randn(1, 144, 8, 8), qps[1]
    with torch.no_grad():
        ours = code_pair(model, frames, ref, qps[1:])
        ctx, temporal = model.run_stage("context", ref, qp)
        y, z_hat = model.run_stage("encoder", frames, ctx, qp)
        q_dec, scales, means, params = model.run_stage("prior", z_hat, temporal)
        ys, y_hat = y / q_dec, torch.zeros_like(y)
        for step, mask in enumerate(latent.checkerboard_masks(*y.shape[1:])):
            if step:
                scales, means = model.run_stage("spatial_prior", y_hat, params)
            indexes = latent.step_indexes(scales, mask, skip_threshold=float("-inf"))
            y_hat = y_hat + latent.quantize_step(ys, means, mask, indexes)[1]
        feature, next_ref = model.run_stage("decoder", y_hat * q_dec, ctx, qp)
        recon = model.run_stage("recon", feature, qp)
    assert torch.allclose(ours["ref"], next_ref, atol=1e-5)
    assert len(ours["recon"]) == len(recon) == 2
    assert all(torch.allclose(a.clamp(0, 1), b, atol=1e-5) for a, b in zip(ours["recon"], recon))


def test_training_rate_prices_the_escapes_the_real_coder_writes():
    """Bits per symbol that training charges against what the rANS coder writes for
    Gaussian values, table by table.  Beyond a table's support (±8 at most) a value is an
    escape stored as a raw int32; without its price the estimate for scale 5.5 was 43 %
    under the real rate.  The price is an expectation, so it may overshoot a little at
    the largest scales (a conservative price that keeps pushing scales down)."""
    from ui2c.entropy import rans
    from ui2c.entropy.tables import gaussian_tables, scale_table

    tables, scales = gaussian_tables(), scale_table()
    rng = np.random.default_rng(0)
    n = 100_000
    for index in (20, 60, 90, 100, 115, 127):
        s = float(scales[index])
        values = np.round(rng.normal(0.0, s, n)).astype(np.int32)
        real = len(rans.encode(values, np.full(n, index, np.int32), tables)) * 8 / n
        charged = float(_gaussian_bits(torch.from_numpy(values).float(), torch.full((n,), s)).mean())
        assert 0.97 * real < charged < 1.2 * real, (index, s, real, charged)


def test_windows_get_block_chroma_on_the_sources_grid():
    """A 4:2:0-style window (chroma_as_420) of a video whose chroma already is 2x2 blocks
    on the even grid is the video itself: crops start on even offsets, so the blocks the
    sampler averages are the source's.  Photos rendered at 4:4:4 get block chroma."""
    gen = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 256, (12, 3, 45, 80), generator=gen, dtype=torch.uint8)
    video = blocks.repeat_interleave(2, -2).repeat_interleave(2, -1)
    video[:, 0] = torch.randint(0, 256, (12, 90, 160), generator=gen, dtype=torch.uint8)  # luma stays full detail
    data = Dataset(videos=[video], photos=[], manifest={})
    sampler = WindowSampler(data, 64, seed=1, cut_rate=0.0, chroma_420_share=1.0)
    for _ in range(20):
        window = sampler.window(5)
        assert torch.equal(chroma_as_420(window), window)
        assert window[:, 1:].unique().numel() > 1
    photo = torch.rand(1, 3, 8, 8)
    assert torch.allclose(chroma_as_420(photo)[:, 1:, ::2, ::2], torch.nn.functional.avg_pool2d(photo[:, 1:], 2))
    assert torch.equal(chroma_as_420(photo)[:, 0], photo[:, 0])


def test_camera_paths_stay_inside_the_photo():
    rng = np.random.default_rng(0)
    for _ in range(200):
        theta = camera_path(33, 128, 400, 600, rng)
        corners = torch.tensor([[-1.0, -1.0, 1.0], [1.0, -1.0, 1.0], [-1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
        mapped = torch.einsum("tij,cj->tci", theta, corners)
        assert mapped.abs().max() <= 1.0 + 1e-5


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    photos = root / "usr" / "share" / "backgrounds"
    photos.mkdir(parents=True)
    yy, xx = np.mgrid[0:300, 0:400]
    Image.fromarray(np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)).save(photos / "ramp.png")
    out = root / "train.zip"
    subprocess.run([sys.executable, "-m", "ui2c.training.prepare", "-o", str(out), "--video", f"{DEMO}:2",
                    "--window", "9", "--photos", str(photos), "--photo-size", "400"], check=True)
    return out


def test_prepared_file_holds_the_frames_it_names(data_file):
    data = load_dataset(data_file)
    assert [v.shape for v in data.videos] == [(9, 3, 90, 160)] * 2
    assert [p.shape for p in data.photos] == [(3, 300, 400)]
    assert data.manifest["photos"][0]["source"] == "usr/share/backgrounds/ramp.png"
    assert 14 <= int(data.photos[0][0].min()) and int(data.photos[0][0].max()) <= 237  # limited-range luma (±JPEG)


def test_held_out_clips_are_refused(tmp_path):
    run = subprocess.run([sys.executable, "-m", "ui2c.training.prepare", "-o", str(tmp_path / "x.zip"),
                          "--video", "/work/shared/data/cockatoo.mp4:1"], capture_output=True, text=True)
    assert run.returncode == 2 and "held out" in run.stderr.splitlines()[-1]
    assert not (tmp_path / "x.zip").exists() and list(tmp_path.iterdir()) == []  # nothing half-written


def test_held_out_photos_under_a_searched_folder_are_skipped_and_outputs_kept(tmp_path):
    photos = tmp_path / "usr" / "share" / "backgrounds"
    (photos / "mate").mkdir(parents=True)
    ramp = np.tile((np.arange(400) % 256).astype(np.uint8), (300, 1))
    for path in (photos / "ok.png", photos / "mate" / "held.png"):
        Image.fromarray(np.stack([ramp] * 3, -1)).save(path)
    prepare = [sys.executable, "-m", "ui2c.training.prepare", "-o", str(tmp_path / "d.zip"), "--photos", str(photos),
               "--photo-size", "400"]
    assert subprocess.run(prepare, capture_output=True, text=True).returncode == 0
    assert [p["source"] for p in load_dataset(tmp_path / "d.zip").manifest["photos"]] == ["usr/share/backgrounds/ok.png"]
    before = (tmp_path / "d.zip").read_bytes()
    again = subprocess.run(prepare, capture_output=True, text=True)
    assert again.returncode == 2 and "pass -y" in again.stderr and (tmp_path / "d.zip").read_bytes() == before


def test_state_shards_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(state_mod, "SHARD_BYTES", 4096)
    tensors = {f"t{i}": torch.randn(300) for i in range(10)}
    state_mod.save_shards(tmp_path, "model", tensors)
    assert len(list(tmp_path.glob("model-*.pt"))) == 4  # 1200 bytes each: three per 4 KiB shard
    loaded = state_mod.load_shards(tmp_path, "model")
    assert loaded.keys() == tensors.keys() and all(torch.equal(a, tensors[k]) for k, a in loaded.items())


def test_a_save_survives_the_leftovers_of_a_killed_one_and_a_foreign_folder_is_refused(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = tmp_path / "state"
    state_mod.save_state(state, model, opt, {"iteration": 1, "adam_resumed": True})
    (tmp_path / "state.old").mkdir()  # a save killed after its renames, before removing the old state
    (tmp_path / "state.old" / "model-0.pt").write_bytes(b"stale")
    state_mod.save_state(state, model, opt, {"iteration": 2})
    assert json.loads((state / "state.json").read_text())["iteration"] == 2 and not (tmp_path / "state.old").exists()
    info = state_mod.load_state(state_mod.readable_state(state), model, opt)
    assert info["adam_resumed"] is True
    for shard in state.glob("exp_avg*.pt"):  # a model-only state: Adam restarts, whatever an earlier run said
        shard.unlink()
    (state / "state.json").write_text(json.dumps({"iteration": 2, "adam_resumed": True}))
    assert "adam_resumed" not in state_mod.load_state(state, model, opt)
    (state / "state.json").unlink()
    with pytest.raises(CheckpointError, match="holds no state.json"):
        state_mod.readable_state(state)


def test_adam_moments_come_back_only_to_the_parameters_they_were_saved_for(tmp_path):
    model = torch.nn.Linear(3, 3)
    saved = torch.optim.Adam([model.weight, model.bias])
    model(torch.ones(1, 3)).sum().backward()
    saved.step()
    state_mod.save_state(tmp_path / "state", model, saved, {"iteration": 1})
    same = torch.optim.Adam([{"params": [model.weight]}, {"params": [model.bias]}])
    assert state_mod.load_state(tmp_path / "state", model, same).get("adam_resumed")
    swapped = torch.optim.Adam([{"params": [model.bias]}, {"params": [model.weight]}])
    assert not state_mod.load_state(tmp_path / "state", model, swapped).get("adam_resumed")
    assert not swapped.state  # fresh moments, not the other parameter's


def test_qp_anchors_learn_at_their_own_rate(tmp_path):
    cfg = TrainConfig(data="unused", out_dir=str(tmp_path / "out"), init=str(SHIPPED))
    model, opt, _, _ = trainer_build(cfg, tmp_path / "out")
    anchors = {id(p) for n, p in model.named_parameters() if qp_anchors.is_anchor(n)}
    by_scale = {g["lr_scale"]: {id(p) for p in g["params"]} for g in opt.param_groups}
    assert by_scale == {1.0: {id(p) for p in model.parameters()} - anchors, cfg.anchor_lr_scale: anchors}
    assert len(anchors) == len(qp_anchors._targets(model))


def test_train_writes_small_resumable_state_and_exportable_weights(tmp_path, data_file, monkeypatch):
    cfg = TrainConfig(data=str(data_file), out_dir=str(tmp_path), init=str(SHIPPED), minutes=0.15, batch=2, crop=64,
                      pairs=(2, 4), warmup=1, checkpoint_minutes=0.02)  # also checkpoints mid-run
    saves = []
    checkpoint = trainer_mod._checkpoint
    monkeypatch.setattr(trainer_mod, "_checkpoint", lambda *a: saves.append(a[4]["iteration"]) or checkpoint(*a))
    clock = itertools.count(0.0, 0.5)  # the trainer's clock: each reading half a second after the last
    monkeypatch.setattr(trainer_mod, "time", types.SimpleNamespace(monotonic=lambda: next(clock)))
    train(cfg)
    assert len(saves) >= 2 and saves == sorted(saves)  # the budget (9 s) outlasts a save interval (1.2 s)
    info = json.loads((tmp_path / "state" / "state.json").read_text())
    first = info["iteration"]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert first >= 1 and len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in files)
    cfg.minutes = 0.1
    train(cfg)
    info = json.loads((tmp_path / "state" / "state.json").read_text())
    assert info["iteration"] > first and info["adam_resumed"] and [r["from_iteration"] for r in info["runs"]] == [0, first]
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["it"] for r in records] == list(range(1, info["iteration"] + 1))
    assert all(math.isfinite(r["loss"]) and r["bpp"] > 0 for r in records)
    plain = build_model("ui2c-s")
    meta = load_weights(plain, tmp_path / "weights.pt")
    assert meta["iterations"] == info["iteration"] and meta["preset"] == "ui2c-s"
    # the export is the average, carried across the resume, not the live model
    assert meta["average"] == {"decay": cfg.average_decay, "updates": info["iteration"]}
    assert info["average_updates"] == info["iteration"] and info["average_ramp"] is False  # started from trained weights
    live, averaged = (state_mod.load_shards(tmp_path / "state", kind) for kind in ("model", "average"))
    name = next(n for n in averaged if not qp_anchors.is_anchor(n) and n.endswith("weight"))
    assert torch.equal(plain.state_dict()[name].half(), averaged[name])
    assert not torch.equal(averaged[name], live[name].half())
    # the starting weights' provenance travels with the export (less the data manifest and run list)
    shipped = build_model("ui2c-s")
    shipped_meta = load_weights(shipped, SHIPPED)
    assert meta["init"] == {"weights": SHIPPED.name,
                            **{k: v for k, v in shipped_meta.items() if k not in ("sources", "runs")}}
    # the shipped tables already carry a learned qp ramp: training continues it, not a fresh one
    assert shipped_meta["qp_tables"] == meta["qp_tables"] == "anchor-interpolated"
    assert _q_ramp(shipped) > 1.5 and math.isclose(_q_ramp(plain), _q_ramp(shipped), rel_tol=0.1)


def test_weight_average_is_the_closed_form_ema_and_leaves_the_live_weights_alone():
    model = torch.nn.Linear(2, 1)
    start = model.weight.detach().double().clone()
    average = WeightAverage(model, decay=0.9)
    seen = []
    for step in range(30):
        with torch.no_grad():
            model.weight.copy_(torch.tensor([[math.sin(step), step / 7.0]]))
        seen.append(model.weight.detach().double().clone())
        average.update(model)
    decays = [min(0.9, (1 + n) / (10 + n)) for n in range(30)]
    # a_n = Π d · a_0 + Σ_k (1 − d_k) Π_{j>k} d_j · p_k, summed directly
    expected = math.prod(decays) * start + sum((1 - d) * math.prod(decays[k + 1:]) * p
                                               for k, (d, p) in enumerate(zip(decays, seen)))
    assert torch.allclose(average.values[0].double(), expected, atol=1e-6)
    with average.applied(model):
        assert torch.equal(model.weight, average.values[0])
    assert torch.equal(model.weight.double(), seen[-1])
    resumed = WeightAverage(model, 0.9, average.state(), average.updates)
    assert resumed.updates == 30 and torch.equal(resumed.values[0], average.values[0].half().float())
    other = WeightAverage(model, 0.9, {"foreign": torch.zeros(1)}, 30)  # another model's average is not mixed in
    assert other.updates == 0 and torch.equal(other.values[0], model.weight.detach())
    steady = WeightAverage(model, 0.9, ramp=False)  # from trained weights: the full decay from the first update
    before = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    steady.update(model)
    assert torch.allclose(steady.values[0], 0.9 * before + 0.1 * model.weight.detach())
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, 1.0)


def _export(path: Path, seed: int, preset: str = "ui2c-s", drop: str = "", **meta) -> Path:
    torch.manual_seed(seed)
    state = {k: v.half() if v.is_floating_point() else v for k, v in build_model("ui2c-s").state_dict().items()
             if k != drop}
    torch.save({"preset": preset, "state_dict": state,
                "meta": {"preset": preset, "qp_tables": "anchor-interpolated", "iterations": seed, **meta}}, path)
    return path


def test_mean_of_exports_is_the_rounded_parameter_mean_and_refuses_what_it_cannot_average(tmp_path, capsys):
    a, b = _export(tmp_path / "a.pt", 1, sources=["x"]), _export(tmp_path / "b.pt", 2)
    out = tmp_path / "mean.pt"
    assert average_mod.main([str(out), str(a), str(b)]) == 0
    blob = torch.load(out, weights_only=True)
    # float64 mean of the two float16 files, rounded once to float16, computed apart from the tool
    sa, sb = (torch.load(p, weights_only=True)["state_dict"] for p in (a, b))
    for key, value in blob["state_dict"].items():
        if value.is_floating_point():
            expected = ((sa[key].double().numpy() + sb[key].double().numpy()) / 2).astype(np.float16)
            np.testing.assert_array_equal(value.numpy(), expected)
        else:
            assert torch.equal(value, sa[key])
    load_weights(build_model("ui2c-s"), out)  # loads strictly into the preset's network
    meta = blob["meta"]
    # what the inputs agree on stays on top; their own counts only under mean_of
    assert meta["qp_tables"] == "anchor-interpolated" and "iterations" not in meta and "sources" not in meta
    assert [(m["weights"], m["iterations"]) for m in meta["mean_of"]] == [("a.pt", 1), ("b.pt", 2)]
    assert "sources" not in meta["mean_of"][0]
    before = out.read_bytes()
    refusals = {
        "exists; pass -y": [str(out), str(a), str(b)],
        "is the input file": [str(a), str(a), str(b), "-y"],
        "at least two": [str(tmp_path / "one.pt"), str(a)],
        "not found": [str(tmp_path / "x.pt"), str(a), str(tmp_path / "missing.pt")],
        "holds ui2c weights": [str(tmp_path / "y.pt"), str(a), str(_export(tmp_path / "c.pt", 3, preset="ui2c"))],
        "qp-table layouts": [str(tmp_path / "z.pt"), str(a), str(_export(tmp_path / "d.pt", 4, qp_tables="flat"))],
        "does not match": [str(tmp_path / "w.pt"), str(a), str(_export(tmp_path / "e.pt", 5, drop="q_encoder"))],
    }
    for message, argv in refusals.items():
        assert average_mod.main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert out.read_bytes() == before and not list(tmp_path.glob(".*.part"))
    assert not any((tmp_path / n).exists() for n in ("one.pt", "x.pt", "y.pt", "z.pt", "w.pt"))


def _q_ramp(model) -> float:
    """q_encoder at the last qp row over the first (channel means)."""
    rows = model.q_encoder.detach().mean(dim=(1, 2, 3))
    return float(rows[-1] / rows[0])


@pytest.mark.parametrize("marked", [False, True])
def test_flat_tables_start_as_a_rate_ramp_and_learned_ones_are_kept(tmp_path, marked):
    """Weights with plain per-qp tables (no ``qp_tables`` mark) start training from a
    geometric q_encoder ramp of ``rate_span`` (larger qp, finer quantisation); weights
    exported by this trainer keep their learned tables."""
    model = build_model("ui2c-s")
    with torch.no_grad():
        model.q_encoder.fill_(0.8)
    meta = {"preset": "ui2c-s", "iterations": 1, **({"qp_tables": "anchor-interpolated"} if marked else {})}
    torch.save({"preset": "ui2c-s", "state_dict": model.state_dict(), "meta": meta}, tmp_path / "init.pt")
    cfg = TrainConfig(data="unused", out_dir=str(tmp_path / "out"), init=str(tmp_path / "init.pt"))
    built, _, _, _ = trainer_build(cfg, tmp_path / "out")
    rows = built.q_encoder.detach().mean(dim=(1, 2, 3))
    if marked:
        assert torch.allclose(rows, torch.full_like(rows, 0.8), rtol=1e-4)
    else:
        assert math.isclose(float(rows[-1] / rows[0]), cfg.rate_span, rel_tol=1e-4)
        assert math.isclose(float(rows.log().mean().exp()), 0.8, rel_tol=1e-3)


@pytest.mark.parametrize("args, message", [(["--data", "missing.zip"], "training data not found"),
                                           (["--crop", "100"], "multiple of 64"),
                                           (["--pairs", "3-3", "--bptt", "2"], "holds no multiple of --bptt 2"),
                                           (["--average-decay", "1"], "decay must be in [0, 1)")])
def test_bad_input_is_a_one_line_error(tmp_path, args, message):
    run = subprocess.run([sys.executable, "-m", "ui2c.training.cli", "-o", str(tmp_path), *args],
                         capture_output=True, text=True)
    assert run.returncode == 2 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def _last_half_lower(frame: int, psnr: float, frames: int) -> float:
    return psnr - (1.0 if frame >= frames // 2 else 0.0)


def _eval_folder(folder: Path, rates: list[float], psnrs: list[float], frames: int = 20, start: int = 0,
                 frame_psnr=_last_half_lower, fingerprint: str = "0") -> Path:
    """A minimal ``ui2c eval`` output: results.json and the per-frame CSVs drift.py reads.
    Frame f of a qp whose point has PSNR p gets ``frame_psnr(f, p, frames)``: by default
    the point's PSNR, except that the last half is 1 dB lower."""
    width, height = 64, 32
    points = []
    (folder / "frames").mkdir(parents=True)
    for qp, bpp, psnr in zip((0, 20, 40), rates, psnrs):
        points.append({"codec": "ui2c-s", "qp": qp, "bpp": bpp, "psnr_yuv": psnr})
        lines = ["frame,bits,psnr_y,psnr_u,psnr_v,psnr_yuv,reset"]
        for f in range(frames):
            p = frame_psnr(f, psnr, frames)
            lines.append(f"{f},{bpp * width * height},{p},{p},{p},{p},{int(f == 0)}")
        (folder / "frames" / f"ui2c-s_qp{qp:02d}.csv").write_text("\n".join(lines) + "\n")
    results = {"input": "clip.y4m", "start": start, "frames": frames, "width": width, "height": height,
               "model": "ui2c-s", "weights": None, "weights_fingerprint": fingerprint, "points": points}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_drift_summary_and_bd_against_a_base_run(tmp_path):
    """The same PSNRs at 0.8x the rate are a BD-rate of exactly -20 % (a constant
    log-rate shift), and the same rates at +0.5 dB a BD-PSNR of exactly +0.5 dB."""
    rates, psnrs = [0.05, 0.1, 0.2], [30.0, 32.0, 33.5]
    base = _eval_folder(tmp_path / "off", rates, psnrs)
    cheaper = _eval_folder(tmp_path / "cheaper", [0.8 * r for r in rates], psnrs)
    better = _eval_folder(tmp_path / "better", rates, [p + 0.5 for p in psnrs])
    out = subprocess.run([sys.executable, "-m", "ui2c.training.drift", "--span", "5", "--shot", "0:20", str(cheaper),
                          str(better), "--against", str(base)], capture_output=True, text=True, check=True).stdout
    assert "| 20 | 32.00 | 31.00 | -1.00 | 32.00 |" in out
    assert "| 1 | 32.00 → 31.00 |" in out  # resets, then the shot's first and last 10 frames
    assert out.count("**clip.y4m**") == 3  # each folder summarised once
    assert "- cheaper vs off: BD-rate -20.00 %, BD-PSNR " in out
    assert "- better vs off: BD-rate " in out and out.rstrip().endswith("BD-PSNR +0.50 dB")


def test_drift_places_the_anchor_gap_along_the_rate_axis(tmp_path):
    """An anchor 0.5 dB under the model at its low rates and 1.5 dB over it at its top rate:
    the gap line reads the interpolated difference at the shared range's ends."""
    folder = _eval_folder(tmp_path / "run", [0.05, 0.1, 0.2], [30.0, 32.0, 33.5])
    results = json.loads((folder / "results.json").read_text())
    anchor = [(0.05, 29.5), (0.1, 31.5), (0.2, 35.0)]
    results["points"] += [{"codec": "x264-medium", "qp": q, "bpp": r, "psnr_yuv": p} for q, (r, p) in zip((40, 30, 20), anchor)]
    results.update(bd_vs="x264-medium", bd={"ui2c-s": {"bd_rate_pct": 1.0, "bd_psnr_db": -0.1}})
    (folder / "results.json").write_text(json.dumps(results))
    out = subprocess.run([sys.executable, "-m", "ui2c.training.drift", "--span", "5", str(folder)],
                         capture_output=True, text=True, check=True).stdout
    gaps = next(line for line in out.splitlines() if "PSNR gap at equal rate" in line)
    assert gaps.count(" dB at ") == 5
    assert "+0.50 dB at 0.0500 bpp" in gaps and gaps.endswith("-1.50 dB at 0.2000 bpp")


def test_drift_restart_compares_the_same_frames(tmp_path):
    """A restart from frame 16 that is 0.3 dB better on its first 12 frames and equal
    after: -0.15 dB over its 24 frames, 0 over the last 5 (frame by frame, not by index)."""
    rates, psnrs = [0.05, 0.1, 0.2], [30.0, 32.0, 33.5]
    whole = _eval_folder(tmp_path / "whole", rates, psnrs, frames=40, frame_psnr=lambda f, p, _: p + 0.02 * f)
    restarted = _eval_folder(tmp_path / "from16", rates, psnrs, frames=24, start=16,
                             frame_psnr=lambda f, p, _: p + 0.02 * (16 + f) + (0.3 if f < 12 else 0.0))
    drift = [sys.executable, "-m", "ui2c.training.drift", "--span", "5", str(whole)]
    out = subprocess.run([*drift, "--restart", str(restarted)], capture_output=True, text=True, check=True).stdout
    assert "frames 16–39" in out
    # from 0: 32 + 0.02·mean(16..39) = 32.55; the last 5: 32 + 0.02·37 = 32.74
    assert "| 20 | 32.55 | 32.70 | -0.15 | 32.74 | 32.74 | +0.00 |" in out
    for start, fingerprint, message in ((12, "0", "multiple of 8"), (16, "1", "weights_fingerprint differ")):
        other = _eval_folder(tmp_path / f"bad{start}{fingerprint}", rates, psnrs, frames=8, start=start,
                             fingerprint=fingerprint)
        run = subprocess.run([*drift, "--restart", str(other)], capture_output=True, text=True)
        assert run.returncode == 2 and message in run.stderr


def test_video_frames_load_in_numeric_order_past_99(tmp_path):
    """Frame names are zero-padded to 2 digits: 100.jpg must follow 99.jpg, not 10.jpg."""
    import zipfile

    from ui2c.training.prepare import _jpeg

    with zipfile.ZipFile(tmp_path / "v.zip", "w") as archive:
        for t in range(101):
            archive.writestr(f"video/000/{t:02d}.jpg", _jpeg(np.full((16, 16, 3), (40 + t, 128, 128), np.uint8), 92))
        archive.writestr("manifest.json", json.dumps({"videos": [{"source": "x", "frames": 101}], "photos": []}))
    luma = load_dataset(tmp_path / "v.zip").videos[0][:, 0].float().mean(dim=(1, 2))
    assert torch.all(luma.diff() > 0)
