"""The complexity counter against the spec's measured DCVC-RT figures and the
paper's Table 2 (independent numbers, not produced by this code)."""
from __future__ import annotations

import json

import pytest

from ui2c.benchmarks.complexity import count_preset
from ui2c.cli import main


def test_dcvc_rt_matches_spec_figures():
    p, i = count_preset("dcvc-rt", 1920, 1080)
    assert p.params == 20_691_456 and i.params == 45_651_314
    padded = 1920 * 1088
    assert p.enc_macs / padded / 1e3 == pytest.approx(141.3, abs=0.05)
    assert p.dec_macs / padded / 1e3 == pytest.approx(165.5, abs=0.05)
    assert p.enc_kmacs_px == pytest.approx(142.4, abs=0.05)
    assert p.dec_kmacs_px == pytest.approx(166.8, abs=0.05)
    assert p.per_module_kmacs_px["feature_extractor"] == pytest.approx(49.37, abs=0.01)
    assert p.per_module_kmacs_px["recon_generation_net"] == pytest.approx(53.62, abs=0.01)
    assert i.enc_kmacs_px == pytest.approx(490.0, abs=0.1) and i.dec_kmacs_px == pytest.approx(364.9, abs=0.1)


def test_ui2c_within_three_percent_of_table_2():
    (row,) = count_preset("ui2c", 1920, 1080)
    assert row.params / 1e6 == pytest.approx(46.7, rel=0.03)
    assert row.enc_kmacs_px == pytest.approx(157, rel=0.03)
    assert row.dec_kmacs_px == pytest.approx(233, rel=0.03)


def test_ui2c_s_is_about_an_eighth_of_ui2c():
    (big,) = count_preset("ui2c", 1920, 1080)
    (small,) = count_preset("ui2c-s", 1920, 1080)
    ratio = (small.enc_macs + small.dec_macs) / (big.enc_macs + big.dec_macs)
    assert 1 / 10 < ratio < 1 / 6


def test_cli_prints_table_and_json(capsys):
    assert main(["complexity", "--model", "ui2c", "--size", "1920x1080"]) == 0
    out = capsys.readouterr().out
    assert "| ui2c |" in out and "feature_extractor" in out
    assert main(["complexity", "--model", "dcvc-rt", "--size", "640x360", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["dcvc-rt (P)", "dcvc-rt (I)"]
