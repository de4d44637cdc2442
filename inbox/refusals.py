"""Refusals the domain raises: what kind of refusal, a code for programs, a sentence for a person.

They carry no HTTP status. The web edge (inbox.web.errors) maps each kind to one status, so a
rule lives in the domain and its HTTP shape in one place; the command line maps them to exit 2.
"""

from __future__ import annotations

import enum


class Why(enum.StrEnum):
    INVALID = "invalid"  # what was asked makes no sense: a blank body, a malformed id
    NOT_FOUND = "not_found"  # what it names does not exist
    CONFLICT = "conflict"  # the state of things forbids it now: opted out, window closed, already sent
    FORBIDDEN = "forbidden"  # this person may not do it
    TOO_LARGE = "too_large"  # more than the inbox takes (a file, a request)


class Refused(Exception):
    """A request the domain will not carry out; nothing was changed."""

    def __init__(self, why: Why, code: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.why, self.code, self.detail = why, code, detail
        self.extra = extra  # more fields for programs, e.g. {"missing": ["1", "2"]}
