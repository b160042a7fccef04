"""The scheduling decisions as pure functions: measured costs, admission, batch rows."""

from __future__ import annotations

import pytest

from voxline.scheduling.admission import StreamNeed, capacity_streams, fits, retry_after
from voxline.scheduling.batching import RowNeed, choose_rows
from voxline.scheduling.costs import RenderCosts, StepCosts

FLAT = StepCosts({1: 0.05, 8: 0.055})  # a GPU: a row is nearly free
LINEAR = StepCosts({1: 0.1, 8: 0.8})  # a row costs as much as a step alone
CPU = StepCosts({1: 0.1, 2: 0.16, 4: 0.26, 8: 0.45})  # batching pays, but each row costs


def test_render_costs_learn_the_pace_and_count_parallel_renders_once_seen():
    costs = RenderCosts(parallel=2)
    assert costs.audio_rate() is None and costs.step_cost(1.0) == 0.0
    costs.observe_step(seconds=0.1, audio_s=1.0)  # 10 s of audio a second, alone
    assert costs.audio_rate() == pytest.approx(10.0)  # no gain assumed from a second render
    assert costs.step_cost(2.0) == pytest.approx(0.2)
    for _ in range(50):  # two at once turn out to make 12 s/s in all (shared cores)
        costs.observe_step(seconds=1 / 6, audio_s=1.0, concurrent=2)
    assert costs.audio_rate() == pytest.approx(12.0, rel=0.01)
    assert costs.step_cost(1.0) == pytest.approx(1 / 6, rel=0.01)  # the slower level
    costs.observe_text(chars=30, audio_s=2.0)
    assert costs.audio_of_text(60) == pytest.approx(4.0)


def test_step_costs_interpolate_and_extrapolate_linearly():
    assert StepCosts()(4) is None
    assert CPU(3) == pytest.approx(0.21)
    assert CPU(16) == pytest.approx(0.9)
    assert StepCosts({4: 0.4})(2) == pytest.approx(0.2)


@pytest.mark.parametrize(("running", "newcomer", "capacity", "ok"), [
    ([], StreamNeed(0, 5), 1.0, True),  # one real-time stream on a 1x engine
    ([StreamNeed(0, 5)], StreamNeed(0, 5), 1.0, False),  # two need 2x
    ([StreamNeed(0, 5)] * 3, StreamNeed(0, 5), 4.0, True),
    ([StreamNeed(0, 5)] * 4, StreamNeed(0, 5), 4.0, False),
    # Streams with their whole remaining audio in hand need nothing more.
    ([StreamNeed(20, 0)] * 10, StreamNeed(0, 5), 1.0, True),
    # A stream 8 s ahead with 2 s left to make leaves room in the next seconds, but not for
    # 16 s of a newcomer's audio: at the 16 s horizon both need 18 s of 16.
    ([StreamNeed(8, 2)], StreamNeed(0, 16), 1.0, False),
    ([StreamNeed(8, 2)], StreamNeed(0, 6), 1.0, True),
])
def test_fits_at_every_horizon(running, newcomer, capacity, ok):
    assert fits(running, newcomer, capacity) is ok


def test_a_chunk_arrives_whole_so_a_stream_due_soon_needs_all_of_it():
    stream = StreamNeed(buffered_s=1.0, remaining_s=10.0, chunk_s=3.0)
    assert [stream.need(h) for h in (1.0, 1.5, 4.0, 4.5)] == [0.0, 3.0, 3.0, 6.0]
    assert StreamNeed(1.0, 10.0).need(1.5) == 0.5  # a smooth flow
    # Two such streams due in 0.5 s on a 3x engine: 6 s of audio in 0.5 s does not fit.
    assert not fits([StreamNeed(0.5, 10, 3.0)], StreamNeed(0.5, 10, 3.0), 3.0)
    assert fits([StreamNeed(0.5, 10)], StreamNeed(0.5, 10), 3.0)


def test_retry_after_is_when_a_running_stream_has_made_its_audio():
    running = [StreamNeed(0, 7.0), StreamNeed(0, 3.0)]  # served just in time, in real time
    newcomer = StreamNeed(0, 5)
    assert not fits(running, newcomer, 2.0)
    assert retry_after(running, newcomer, 2.0) == 3  # the 3 s stream is done then
    assert fits([s.later(3) for s in running], newcomer, 2.0)
    assert retry_after([StreamNeed(0, 500)] * 2, newcomer, 2.0, longest_s=30) == 30


def test_capacity_is_measured_output_at_the_target_load():
    assert capacity_streams(None, 0.85) is None
    assert capacity_streams(20.0, 0.85) == pytest.approx(17.0)


def rows(*slacks):
    return [RowNeed(s, steps_to_chunk=10) for s in slacks]


def test_unknown_costs_batch_the_most_urgent_rows():
    assert choose_rows(rows(None, 3.0, 4.0), StepCosts(), max_rows=2) == [0, 1]


def test_gpu_like_flat_cost_everyone_rides():
    assert choose_rows(rows(None, 5.0, 6.0, 7.0), FLAT, max_rows=8) == [0, 1, 2, 3]


def test_cpu_newcomer_rides_alone_while_others_have_audio_in_hand():
    # Running rows with seconds in hand: a second row would slow the newcomer's first chunk.
    assert choose_rows(rows(None, 5.0, 6.0), CPU, max_rows=8) == [0]
    assert choose_rows(rows(None, 5.0, 6.0), LINEAR, max_rows=8) == [0]


def test_cpu_a_row_near_its_deadline_rides_with_the_newcomer():
    # 10 steps to its chunk at 0.16 s/step: 1.6 s; with 2.0 s of slack it must ride now.
    assert choose_rows(rows(None, 2.0, 6.0), CPU, max_rows=8) == [0, 1]


def test_cpu_a_row_late_either_way_does_not_slow_first_audio():
    # 1.0 s of slack, 1.6 s to its chunk even riding: it sits out until the newcomer has audio.
    assert choose_rows(rows(None, 1.0, -2.0), CPU, max_rows=8) == [0]
    assert choose_rows(rows(1.0, -2.0), CPU, max_rows=8) == [0, 1]  # no newcomer: both ride


def test_cpu_without_newcomers_rows_ride_while_batching_raises_throughput():
    assert choose_rows(rows(4.0, 5.0, 6.0, 7.0), CPU, max_rows=8) == [0, 1, 2, 3]
    # Linear cost: batching buys nothing, but loses nothing either: all progress together.
    assert choose_rows(rows(4.0, 5.0), LINEAR, max_rows=8) == [0, 1]
    assert choose_rows(rows(4.0, 5.0, 6.0), CPU, max_rows=2) == [0, 1]


def test_newcomers_all_ride_first_up_to_the_batch_size():
    assert choose_rows(rows(5.0, None, None, 6.0), FLAT, max_rows=2) == [1, 2]


def test_simultaneous_newcomers_batch_only_where_it_lowers_their_summed_wait():
    # Three newcomers together: 3 rows must cost at most 2 single steps.
    assert choose_rows(rows(None, None, None), StepCosts({1: 0.1, 4: 0.2}), 8) == [0, 1, 2]
    assert choose_rows(rows(None, None, None), FLAT, max_rows=8) == [0, 1, 2]
    assert choose_rows(rows(None, None, None), CPU, max_rows=8) == [0]  # 0.21 s > 0.2 s
    assert choose_rows(rows(None, None, None), LINEAR, max_rows=8) == [0]  # one at a time


def test_served_just_in_time_a_chunked_stream_keeps_part_of_a_chunk_in_hand():
    stream = StreamNeed(buffered_s=1.0, remaining_s=5.0, chunk_s=2.0)
    assert stream.later(0.5) == StreamNeed(0.5, 5.0, 2.0)
    assert stream.later(1.5) == StreamNeed(1.5, 3.0, 2.0)  # one chunk came as audio ran out
    assert stream.later(6.5) == StreamNeed(0.0, 0.0, 2.0)  # all made, all played
    # Demand is checked where it steps up (due points), not only at fixed horizons.
    assert not fits([StreamNeed(0.6, 9, 2.0)], StreamNeed(0.6, 9, 2.0), 3.0)  # 4 s by 0.6 s
