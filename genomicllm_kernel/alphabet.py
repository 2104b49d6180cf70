"""Nucleotide alphabet shared by the grammar, the checks and the tokenizer."""

#: Every IUPAC nucleotide code the grammar accepts (U is read as T).
IUPAC_NUCLEOTIDES = frozenset("ACGTUNRYSWKMBDHV")
#: The letters the model reads natively; other ambiguity codes reach it as N.
MODEL_NUCLEOTIDES = "ACGTN"


def normalise_sequence(text: str) -> str:
    """Upper-case and read RNA ``U`` as ``T``, as TASKS.md requires."""
    return text.upper().replace("U", "T")


def first_invalid_character(text: str) -> tuple[int, str] | None:
    """Return (1-based position, character) of the first non-IUPAC character, or None."""
    for position, char in enumerate(text, start=1):
        # ASCII letters only: str.upper() maps some non-ASCII letters onto codes ('ſ' -> 'S')
        if not char.isascii() or char.upper() not in IUPAC_NUCLEOTIDES:
            return position, char
    return None


def looks_like_sequence(text: str) -> bool:
    return bool(text) and first_invalid_character(text) is None
