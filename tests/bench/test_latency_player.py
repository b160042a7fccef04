"""The simulated real-time player on synthetic arrival times with known underruns."""

import pytest
from latencylib.player import Arrival, coalesce, simulate_player

BPS = 1000.0  # 1000 bytes = 1 s of audio keeps the arithmetic exact


def test_audio_arriving_faster_than_real_time_never_underruns():
    arrivals = [Arrival(0.0, 1000), Arrival(0.5, 1000), Arrival(1.0, 1000)]
    r = simulate_player(arrivals, BPS)
    assert (r.underruns, r.stall_s) == (0, 0.0)
    assert r.start_t == 0.0
    assert r.end_t == 3.0
    assert r.audio_s == 3.0


def test_chunk_arriving_exactly_when_buffer_empties_is_not_an_underrun():
    arrivals = [Arrival(1.0, 500), Arrival(1.5, 500), Arrival(2.0, 500)]
    r = simulate_player(arrivals, BPS)
    assert r.underruns == 0
    assert r.end_t == 2.5


def test_each_late_chunk_is_one_underrun_with_its_stall():
    # 0.25 s of audio every 0.5 s: after the first chunk each one comes 0.25 s late.
    arrivals = [Arrival(0.5 * i, 250) for i in range(4)]
    r = simulate_player(arrivals, BPS)
    assert r.underruns == 3
    assert r.stalls == [0.25, 0.25, 0.25]
    assert r.stall_s == 0.75
    assert r.end_t == 1.75


def test_playback_starts_at_first_byte_not_at_request_send():
    arrivals = [Arrival(2.0, 1000), Arrival(3.0, 1000)]
    r = simulate_player(arrivals, BPS)
    assert r.start_t == 2.0
    assert r.underruns == 0


def test_mixed_stream_counts_only_the_gaps_longer_than_the_buffer():
    arrivals = [
        Arrival(0.0, 2000),  # plays until 2.0
        Arrival(1.0, 500),  # in time: plays until 2.5
        Arrival(3.0, 500),  # 0.5 s stall, plays until 3.5
        Arrival(3.25, 250),  # in time: plays until 3.75
        Arrival(4.0, 1000),  # 0.25 s stall, plays until 5.0
    ]
    r = simulate_player(arrivals, BPS)
    assert r.underruns == 2
    assert r.stalls == [0.5, 0.25]
    assert r.end_t == 5.0


def test_prebuffer_delays_start_and_absorbs_jitter():
    arrivals = [Arrival(0.5 * i, 250) for i in range(4)]
    r = simulate_player(arrivals, BPS, prebuffer_s=0.5)
    # Starts when 0.5 s is buffered (second chunk, t=0.5), runs dry at 1.0, waits for 1.0: ok;
    # then plays 1.0..1.25 and waits 0.25 s for the last chunk at 1.5.
    assert r.start_t == 0.5
    assert r.underruns == 1
    assert r.stall_s == 0.25


def test_prebuffer_larger_than_the_stream_starts_at_the_last_chunk():
    r = simulate_player([Arrival(0.0, 100), Arrival(1.0, 100)], BPS, prebuffer_s=5.0)
    assert r.start_t == 1.0
    assert r.underruns == 0
    assert r.end_t == pytest.approx(1.2)


def test_unsorted_and_empty_reads_are_handled():
    arrivals = [Arrival(1.0, 250), Arrival(0.0, 250), Arrival(0.1, 0)]
    r = simulate_player(arrivals, BPS)
    assert r.start_t == 0.0
    assert r.underruns == 1
    assert r.stall_s == 0.75


def test_nothing_arrived():
    r = simulate_player([], BPS)
    assert (r.start_t, r.end_t, r.audio_s, r.underruns, r.stall_s) == (None, None, 0.0, 0, 0.0)


def test_bad_arguments():
    with pytest.raises(ValueError):
        simulate_player([Arrival(0.0, 1)], 0)
    with pytest.raises(ValueError):
        simulate_player([Arrival(0.0, 1)], BPS, prebuffer_s=-1)


def test_coalesce_merges_reads_of_one_chunk_and_keeps_its_first_time():
    reads = [Arrival(0.0, 10), Arrival(0.0005, 10), Arrival(0.5, 10), Arrival(0.5008, 5)]
    assert coalesce(reads, 0.001) == [Arrival(0.0, 20), Arrival(0.5, 15)]
    assert coalesce(reads, 0.0) == reads
