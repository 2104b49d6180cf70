"""One exception family for everything a user can get wrong.

Front ends (CLI, Galaxy, Jupyter) catch :class:`InputError` and print its message as one line;
anything else is a bug and is reported as an internal error. Keeping the family small and the
messages specific is what lets a Galaxy user fix a job without reading Python.
"""


class GenomicLLMError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(GenomicLLMError, ValueError):
    """The user's input cannot be answered as given; the message says why and what to do."""


class GrammarError(InputError):
    """The prompt does not follow `<item>, <item>, ..., <question key> =`."""


class UnknownQuestionError(GrammarError):
    """The question key is not in the task registry."""


class SequenceError(InputError):
    """A nucleotide sequence is empty, holds non-IUPAC characters, or is too long."""


class SequenceTooLongError(SequenceError):
    """The sequence does not fit the model's context; the message names the windowing option."""


class FastaError(InputError):
    """A FASTA or tabular sequence file is malformed; the message names file and line."""


class ModelUnavailableError(InputError):
    """No trained model is installed where one was asked for; no answer is ever faked."""


class ModelFileError(InputError):
    """A model folder (or archive) is there but damaged or unsafe; the message names the file."""


class TrainingDivergedError(GenomicLLMError):
    """The loss stayed non-finite: more steps would only skip (the weights are kept finite)."""
