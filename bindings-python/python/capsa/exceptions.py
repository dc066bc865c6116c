"""The capsa exceptions: :class:`CapsaError` and one subclass per stable error code.

Each subclass also derives from the matching builtin where there is one, so ordinary Python
handlers work: ``except FileNotFoundError`` catches a missing capsule (``NotFoundError``),
``except ValueError`` a bad name, version, sequence or argument. Every class carries the
stable code string as ``.code`` (``"NOT_FOUND"``) and its number as ``.number`` (``1``), the
same in every capsa binding.
"""

from capsa._native import (
    AlreadyExistsError,
    BackendError,
    BusyError,
    CancelledError,
    CapsaError,
    ChangedError,
    CorruptError,
    InvalidArgumentError,
    InvalidNameError,
    InvalidSequenceError,
    InvalidStoreError,
    InvalidTransitionError,
    InvalidVersionError,
    IoError,
    NotFoundError,
    SealedError,
    StateError,
    TimeoutError,
    TooLargeError,
    UnsafePathError,
    UnsupportedError,
)

#: ``CORRUPT`` is raised for damaged archives, metadata and config files alike.
CorruptArchiveError = CorruptError

_BY_CODE: dict[str, type[CapsaError]] = {
    cls.code: cls
    for cls in (
        NotFoundError,
        AlreadyExistsError,
        InvalidNameError,
        InvalidVersionError,
        InvalidSequenceError,
        BusyError,
        InvalidTransitionError,
        CorruptError,
        CancelledError,
        IoError,
        BackendError,
        UnsupportedError,
        SealedError,
        InvalidStoreError,
        InvalidArgumentError,
        TimeoutError,
        ChangedError,
        UnsafePathError,
        TooLargeError,
        StateError,
    )
}


def error_class(code: str) -> type[CapsaError]:
    """The exception class for a stable code string (``"NOT_FOUND"`` → ``NotFoundError``)."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise ValueError(f"unknown capsa error code {code!r}") from None


__all__ = [
    "AlreadyExistsError",
    "BackendError",
    "BusyError",
    "CancelledError",
    "CapsaError",
    "ChangedError",
    "CorruptArchiveError",
    "CorruptError",
    "InvalidArgumentError",
    "InvalidNameError",
    "InvalidSequenceError",
    "InvalidStoreError",
    "InvalidTransitionError",
    "InvalidVersionError",
    "IoError",
    "NotFoundError",
    "SealedError",
    "StateError",
    "TimeoutError",
    "TooLargeError",
    "UnsafePathError",
    "UnsupportedError",
    "error_class",
]
