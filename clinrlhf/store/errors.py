"""Store errors. Their messages are fixed text: they never quote what the caller sent."""


class StoreError(Exception):
    """Base class of errors the store raises about its input."""


class NotFoundError(StoreError, LookupError):
    """A referenced row (a card, a suggestion) does not exist."""


class InvalidInputError(StoreError, ValueError):
    """The input is well formed but inconsistent with what is stored."""


class ConflictError(StoreError):
    """The write breaks a rule the store keeps about what is already stored (HTTP 409)."""


class AlreadyReviewedError(ConflictError):
    """This clinician has already reviewed this case: a clinician reviews each case once."""


class ReviewsFullError(ConflictError):
    """The case already has its k reviewers (the review overlap)."""


class WrongClientError(StoreError, PermissionError):
    """The card was issued to another CDS client, which alone may report its outcome."""
