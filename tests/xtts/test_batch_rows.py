"""Rows of a lockstep batch that end at different times, each as its solo generator would."""

from __future__ import annotations

import numpy as np

from voxline.engines.xtts_batch import _Row, advance_rows

STOP = 1025


def generator(token_rows: list[list[int]]):
    """Yield (tokens, latents) per step like coqui's batched generate_stream: finished rows get
    the pad token (= stop); latents carry (row, step) so the test can tell them apart."""
    steps = max(len(r) for r in token_rows)
    for step in range(steps):
        tokens = np.array([r[step] if step < len(r) else STOP for r in token_rows])
        latents = np.array([[i * 100 + step] for i in range(len(token_rows))], dtype=float)
        yield tokens, latents
        if all(step >= len(r) - 1 for r in token_rows):
            return


def solo(tokens: list[int], size: int) -> list[tuple[list[float], bool]]:
    """What one row alone collects per step: (latents so far, final)."""
    row = _Row(embedding=None, length_scale=1.0)
    out = []
    gen = generator([tokens])
    while not row.final:
        advance_rows([row], gen, STOP, size)
        out.append(([float(x[0][0]) for x in row.latents], row.final))
    return out


def test_rows_end_at_their_own_end_token_and_collect_only_their_latents():
    # Row 0 ends at step 2, row 1 at step 5, row 2 never before the generator stops (7 steps).
    token_rows = [[1, 2, STOP], [3, 4, 5, 6, 7, STOP], [8, 9, 10, 11, 12, 13, 14]]
    rows = [_Row(embedding=None, length_scale=1.0) for _ in token_rows]
    gen = generator(token_rows)
    steps = []
    while not all(r.final for r in rows):
        advance_rows(rows, gen, STOP, 2)
        steps.append([([float(x[0][0]) for x in r.latents], r.final) for r in rows])
        for r in rows:
            r.done = r.final  # what XttsBatch.step does after decoding a final chunk
    # Row 0: its 3 latents (its end token's included), final on the token after, like solo.
    assert [float(x[0][0]) for x in rows[0].latents] == [0, 1, 2]
    assert [float(x[0][0]) for x in rows[1].latents] == [100, 101, 102, 103, 104, 105]
    assert [float(x[0][0]) for x in rows[2].latents] == [200, 201, 202, 203, 204, 205, 206]
    # Chunk by chunk, each row's view equals the same tokens run alone (offsets aside).
    for i, tokens in enumerate(token_rows):
        alone = solo(tokens, 2)
        mine = [s[i] for s in steps][:len(alone)]
        assert [(len(lat), fin) for lat, fin in mine] == [(len(lat), fin) for lat, fin in alone]
