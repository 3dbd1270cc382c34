"""The output tail: what is kept, what is counted as cut, and where it is cut."""

from __future__ import annotations

from cronkeeper.cli.runs import unseen
from cronkeeper.executors.output import TailBuffer


def test_a_tail_is_cut_at_a_characters_start_so_followers_count_right() -> None:
    """Half a character at the start would decode to a replacement character and shift `runs tail`'s count
    of the bytes written in between."""
    tail = TailBuffer(3)
    tail.append("éa".encode())  # 3 bytes: é is two
    before = tail.text()
    tail.append(b"b")  # the tail now starts inside é: the rest of it goes too
    after = tail.text()
    assert "\ufffd" not in after and after.endswith("ab")
    assert unseen(before, after) == "b"


def test_followed_multibyte_output_reads_as_written() -> None:
    """A follower that looks after each write sees every write once, whatever the tail cut before it."""
    tail = TailBuffer(16)
    written, followed, last = "", "", ""
    for word in ["é", "漢字", "ab", "🙂", "c", "ñandú", "x" * 5, "ß", "🙂🙂🙂"]:
        written += word
        tail.append(word.encode())
        now = tail.text()
        followed += unseen(last, now)
        last = now
    assert followed == written
