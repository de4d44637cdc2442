"""CSV as every download of the inbox writes it (the export, the consent ledger, the reports).

RFC 4180: comma, double quotes where needed, CRLF line ends, UTF-8. Every text cell goes
through `neutralise_formula`: a cell starting with `=`, `+`, `-`, `@`, tab, CR or LF (OWASP's
CSV-injection list), or with a space or a full-width `＝＋－＠` that a spreadsheet may skip or
fold first, gets a single quote in front, so no spreadsheet evaluates what a customer typed.
That includes phone numbers: `+14155550123` is written `'+14155550123`, which is also what a
manager wants, because a spreadsheet would otherwise turn it into the number 14155550123 (or
1.42E+10) and lose the plus. Cells that start with a quote get one more, so the rule is exactly
reversible: drop one leading `'` from any text cell that starts with one and you have the
original. Cells that are numbers by type are written as plain numbers and never altered.

defusedcsv is not used: it leaves `-2` and leading tab/CR/LF alone and rewrites `|` inside
text, which would change what customers wrote.
"""

from __future__ import annotations

from collections.abc import Iterable

# OWASP's CSV-injection triggers, plus the quote itself so that the rule can be undone exactly,
# plus what a spreadsheet may skip or fold before reading a formula: a leading space (plain,
# no-break or ideographic) and the full-width ＝ ＋ － ＠.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n' \u00a0\u3000\uff1d\uff0b\uff0d\uff20")


def neutralise_formula(cell: str | None) -> str | None:
    """A text cell no spreadsheet will evaluate: a leading `'` when it starts with a trigger."""
    return "'" + cell if cell and cell[0] in FORMULA_TRIGGERS else cell


def csv_cell(cell: str) -> str:
    """One field as csv.writer (QUOTE_MINIMAL) writes it: quoted when it holds `"`, `,`, CR or LF."""
    if '"' in cell or "," in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_line(cells: Iterable[str | int | None]) -> str:
    """One CRLF-terminated line: numbers as they are, None as an empty cell, text formula-safe.

    Byte for byte what csv.writer(lineterminator="\\r\\n") writes for the neutralised cells.
    """
    return (
        ",".join(
            str(cell) if isinstance(cell, int) else "" if cell is None else csv_cell(neutralise_formula(cell) or "")
            for cell in cells
        )
        + "\r\n"
    )
