"""Long reverse / complement questions answered piece by piece, each piece read by the model.

Why: the model's reverse, complementary and reverse complementary answers are exact up to 512 nt
and miss from about 590 nt on (dev exact match 0.79 in the 513-762 nt bucket, the first wrong base
anywhere in the answer): the DNA answer is aligned one token per input chunk, and the model was
trained on few prompts whose answer positions reach that far (MODEL_CARD.md, generation exact match
by input length). These three answers are local: the complement of a sequence is its pieces'
complements in order, and its reverse (complement) is its pieces' reverse (complements) in reverse
order. So a long input is cut into the fewest pieces of at most :data:`PIECE_NT` nt, each piece a
whole number of the codec's 3 nt chunks (so the pieces' chunks are the input's), the model answers
every piece, and the engine joins their answers. Every base of the answer is still the model's; the
probability is the product of the pieces'; the exact check reads the whole input, as before; and the
answer says it was read in pieces (``Answer.note``).
"""

from __future__ import annotations

from dataclasses import replace

from .grammar import Prompt, SequenceItem

#: the longest piece read at once: every dev reverse / complement answer up to 512 nt was exact
PIECE_NT = 510

#: question -> whether its pieces' answers join in reverse order
JOINS = {"reverse sequence": True, "complementary sequence": False, "reverse complementary sequence": True}


def pieces_of(prompt: Prompt, max_nt: int = PIECE_NT) -> list[Prompt] | None:
    """The prompts of ``prompt``'s pieces, in input order, when it is a reverse / complement
    question over one sequence longer than ``max_nt``; None otherwise (answered whole)."""
    if prompt.question not in JOINS or len(prompt.sequences) != 1:
        return None
    seq = prompt.sequence
    if len(seq) <= max_nt:
        return None
    count = -(-len(seq) // max_nt)
    size = -(-len(seq) // count)
    size += -size % 3  # whole chunks: a piece's 3 nt chunks are the input's own
    where = next(i for i, item in enumerate(prompt.items) if isinstance(item, SequenceItem))
    out = []
    for start in range(0, len(seq), size):
        items = list(prompt.items)
        items[where] = SequenceItem(seq[start : start + size])
        out.append(replace(prompt, items=tuple(items)))
    return out


def join(prompt: Prompt, answers: list[str]) -> str:
    """The whole answer from the pieces' answers (in input order)."""
    return "".join(answers[::-1] if JOINS[prompt.question] else answers)


def note(count: int) -> str:
    return f"read in {count} pieces of at most {PIECE_NT} nt (pieces.py): each piece answered by the model, the answers joined"
