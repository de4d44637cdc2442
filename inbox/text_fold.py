"""Text compared the way people search: lower case, accents ignored ("ola" finds "Olá").

fold(text) -> str          for Python and SQLite (registered as inbox_fold() by inbox/db.py)
ACCENTED, PLAIN            the same mapping, for PostgreSQL's translate()
"""

from __future__ import annotations

import unicodedata

# Letters with accents or other marks, and their plain letter.
ACCENTED = "áàâãäåāăąçćčďéèêëēėęěíìîïīįłñńňóòôõöøōőŕřśšşťúùûüūůűųýÿźżž"
PLAIN = "".join("o" if ch == "ø" else "l" if ch == "ł" else unicodedata.normalize("NFKD", ch)[0] for ch in ACCENTED)
_TABLE = str.maketrans(ACCENTED, PLAIN)


def fold(text: str | None) -> str | None:
    """Lower case (every script, not only ASCII) without the accents above; None stays None."""
    return None if text is None else text.lower().translate(_TABLE)
