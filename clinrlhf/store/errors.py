"""Store errors. Their messages are fixed text: they never quote what the caller sent."""


class StoreError(Exception):
    """Base class of errors the store raises about its input."""


class NotFoundError(StoreError, LookupError):
    """A referenced row (a card, a suggestion) does not exist."""


class InvalidInputError(StoreError, ValueError):
    """The input is well formed but inconsistent with what is stored."""
