"""The one exception the FHIR layers raise; the HTTP layer turns it into an OperationOutcome."""

from __future__ import annotations


class FhirError(Exception):
    """A request the server answers with an error status and an OperationOutcome.

    `status` is the HTTP status HAPI would send (400 malformed request, 404 unknown type or id,
    410 expired page); `message` becomes the OperationOutcome's diagnostics.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
