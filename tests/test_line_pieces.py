"""Unit tests of cutting long text lines into windows (edgeapp.models.line_pieces): no model."""
import numpy as np
import pytest

from edgeapp.models import line_pieces
from edgeapp.models.line_pieces import Window, plan


def words_profile(widths, gap=10, letter_gap=2, letter=12):
    """Ink per column of a line of words (each `widths[i]` letters), gaps between them."""
    cols = []
    for n in widths:
        for _ in range(n):
            cols += [5] * letter + [0] * letter_gap
        cols += [0] * gap
    return np.array(cols, dtype=np.float32)


def test_a_line_that_fits_is_one_window_that_keeps_everything():
    assert plan(np.ones(300, np.float32), 320, 24) == [Window(0, 300, 0, float("inf"))]


@pytest.mark.parametrize("width", [321, 700, 1500, 4800])
def test_windows_cover_the_line_and_fit_the_input(width):
    profile = words_profile([4, 7, 3, 9, 5, 2, 6] * 40)[:width]
    wins = plan(profile, 320, 24)
    assert wins[0].start == 0 and wins[0].own_start == 0 and wins[-1].end == width
    for a, b in zip(wins, wins[1:]):
        assert a.own_end == b.own_start                      # own parts partition the line
        assert b.start == a.own_end - 24                     # with the margin before
        assert a.end >= a.own_end + 24                       # and after
    assert all(w.end - w.start <= 320 for w in wins)
    assert all(w.own_end - w.own_start >= 100 for w in wins[:-1])  # progress: no tiny pieces


def test_cuts_fall_in_the_gaps_between_words():
    profile = words_profile([5, 6, 4, 8, 5, 7, 3, 6] * 6)
    for win in plan(profile, 320, 24)[:-1]:
        cut = win.own_end
        assert profile[cut] == 0
        run = np.flatnonzero(profile[cut - 10:cut + 11] == 0)
        assert len(run) >= 10        # a word gap (10 columns), not a 2-column letter gap


def test_without_any_gap_the_cut_is_at_the_faintest_column():
    rng = np.random.RandomState(3)
    profile = rng.randint(3, 20, size=900).astype(np.float32)
    profile[250] = profile[260] = 1
    assert line_pieces.best_cut(profile, 150, 296) == 260   # the rightmost of the faintest
    profile[240:245] = 0
    assert line_pieces.best_cut(profile, 150, 296) == 242   # a gap beats any faint column


def test_ctc_decoding_gives_each_character_its_position():
    chars = ["<blank>", "a", "b", " "]
    steps = [0, 1, 1, 0, 2, 0, 3, 3, 3, 0, 1]  # a(1-2) b(4) space(6-8) a(10)
    probs = np.full((len(steps), 4), 0.01, np.float32)
    probs[np.arange(len(steps)), steps] = 0.97
    got = line_pieces.decode(probs, chars)
    assert [(c, t) for c, t, _ in got] == [("a", 1.5), ("b", 4.0), (" ", 7.0), ("a", 10.0)]
    assert all(abs(conf - 0.97) < 1e-6 for _, _, conf in got)


def test_a_window_keeps_its_own_characters_and_those_by_its_boundaries():
    win = Window(100, 420, 124, 300)   # columns of the line; x = start + (step + 0.5) * 8
    decoded = [("x", 1.0, 0.9),        # x = 112: the margin before, read by the previous window
               ("a", 4.0, 0.9),        # 136: own
               ("b", 24.5, 0.9),       # 300: just past the end, by the boundary: kept for stitch
               ("c", 26.0, 0.9),       # 312: past the seam: the next window's
               ("d", 30.0, 0.9)]       # 344: the margin after
    placed = line_pieces.placed(decoded, win)
    assert [c for c, _, _ in line_pieces.keep_own(placed, win, seam=8)] == ["a", "b"]
    assert placed[1] == ("a", 136.0, 0.9)


def test_stitching_keeps_once_what_both_windows_read_by_their_boundary():
    wins = [Window(0, 320, 0, 187), Window(155, 475, 187, float("inf"))]
    # As measured on "small garden": the first window places the second "l" at 180, the next
    # one at 187; the "ll" both read are legitimately double (16 columns apart).
    first = [("s", 92, 1.0), ("m", 116, 1.0), ("a", 148, 1.0), ("l", 164, 1.0), ("l", 180, 1.0), (" ", 192, 1.0)]
    second = [("l", 187, 1.0), (" ", 199, 1.0), ("g", 211, 1.0), ("a", 231, 1.0)]
    text, _ = line_pieces.join(line_pieces.stitch([first, second], wins))
    assert text == "small ga"
    # A character each window places on the other's side of the boundary is kept, once.
    first, second = [("a", 170, 1.0), ("b", 190, 1.0)], [("b", 183, 1.0), ("c", 210, 1.0)]
    assert line_pieces.join(line_pieces.stitch([first, second], wins))[0] == "abc"
    # Both before the boundary: "morning", the first window's "g" at 196, the next one's at 203.
    wins = [Window(0, 320, 0, 215), Window(183, 503, 215, float("inf"))]
    first, second = [("n", 180, 1.0), ("g", 196, 1.0), (" ", 216, 1.0)], [("g", 203, 1.0), (" ", 215, 1.0), ("t", 227, 1.0)]
    assert line_pieces.join(line_pieces.stitch([first, second], wins))[0] == "ng t"


def test_join_drops_doubled_spaces_and_averages_the_confidence():
    text, score = line_pieces.join([("a", 1, 1.0), (" ", 2, 0.5), (" ", 3, 0.5), ("b", 4, 1.0), (" ", 5, 0.5)])
    assert text == "a b"
    assert score == pytest.approx(0.7)
    assert line_pieces.join([]) == ("", 0.0)


def test_the_ink_profile_reads_light_text_on_dark_too():
    dark_on_light = np.full((48, 60), 250, np.uint8)
    dark_on_light[10:38, 20:30] = 20
    light_on_dark = 255 - dark_on_light
    for img in (dark_on_light, light_on_dark):
        profile = line_pieces.ink_profile(img)
        assert profile[20:30].min() == 28 and profile[:20].max() == 0 and profile[30:].max() == 0


def test_a_line_past_the_widest_aspect_is_squeezed_to_it(local_engine):
    # A bound on one line's work and memory: 500:1 is read as 160:1 (about 32 windows), not 105.
    rec = local_engine.models[3].recognizer
    tensors, windows = rec.preprocess(np.full((20, 10000, 3), 255, np.uint8))
    assert windows[-1].end == 48 * line_pieces.MAX_LINE_ASPECT
    assert len(tensors) == len(windows) <= 34
