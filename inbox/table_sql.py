"""Multi-row statements derived from the models' tables, their values in the driver's own form.

    insert = MultiRowInsert(Message, ("sid", "body", ...), tail="RETURNING id, sid")
    insert.sql(dialect, rows=3)                  -> "INSERT INTO messages (...) VALUES (?, ...), ..."
    insert.parameters(dialect, rows, now)        -> one flat list of driver values, row after row
    RowUpdate(Conversation, ("id", "status"))    -> "UPDATE conversations SET status=? WHERE ..." per row
    RowReader(Customer, CustomerRow._fields, CustomerRow._make).read(dialect, returned) -> [CustomerRow]

A row is any tuple whose positions are named by a list of the table's column names (a NamedTuple's
_fields). The INSERT writes those columns, plus every column with a default that the row leaves
out, in the table's order, as SQLAlchemy Core would (tests/test_batch_sql.py compares the text):
so a column added to a model, with its migration, is written here with no other change.

Values are written the way the column types store them (`inbox.models`), so the ORM reads these
rows like its own: UTC times as SQLAlchemy's DATETIME text ("YYYY-MM-DD HH:MM:SS.ffffff") on
SQLite and as datetimes on PostgreSQL; JSON as `json.dumps` text on both; strings, integers and
booleans as they are (sqlite3 stores a bool as 0/1, as SQLAlchemy does). A column type without a
rule here raises at import, rather than be written differently from the ORM.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, Generic, TypeVar

from sqlalchemy import JSON, Boolean, Column, ColumnDefault, Integer, String, Table
from sqlalchemy.orm import DeclarativeBase

from inbox.models import UTCDateTime

# One row of driver parameters, or of what a statement RETURNs: the driver's own values.
DriverRow = Sequence[Any]


def _utc_text(moment: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text of a time, in UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _utc_from_text(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


@dataclass(frozen=True)  # hashable: the statements keep their text per dialect
class Dialect:
    name: str
    numbered_placeholders: bool  # $1, $2, … (asyncpg) rather than ? (sqlite3)
    # How the driver takes and gives a UTC time; None: as a datetime (asyncpg writes an aware
    # datetime's instant, whatever its zone, and reads it back in UTC).
    write_time: Callable[[datetime], Any] | None
    read_time: Callable[[Any], datetime] | None

    def placeholder(self, position: int) -> str:
        return f"${position}" if self.numbered_placeholders else "?"


SQLITE = Dialect("sqlite", numbered_placeholders=False, write_time=_utc_text, read_time=_utc_from_text)
POSTGRESQL = Dialect("postgresql", numbered_placeholders=True, write_time=None, read_time=None)
DIALECTS = (SQLITE, POSTGRESQL)


def dialect_named(name: str) -> Dialect:
    return POSTGRESQL if name == "postgresql" else SQLITE


def _table(model: type[DeclarativeBase], fields: Sequence[str]) -> Table:
    """The model's table, which must have a column for each of `fields`."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    unknown = [name for name in fields if name not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {unknown}")
    return table


def _is_time(column: Column[Any]) -> bool:
    return isinstance(column.type, UTCDateTime)


def _encoder(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a Python value of this column becomes the driver's; None: as it is."""
    if _is_time(column):
        return dialect.write_time
    if isinstance(column.type, JSON):
        return _json_text
    if isinstance(column.type, Integer | String | Boolean):
        return None
    raise TypeError(f"{column.table.name}.{column.name}: no driver form for {column.type!r} in inbox.table_sql")


def _json_text(value: Any) -> str:
    # json.dumps takes microseconds even for the empty list most messages' media is.
    if not value and type(value) in (list, dict):
        return "[]" if type(value) is list else "{}"
    return json.dumps(value)


# How the values at some positions of each row are converted: (position, function, is a time).
_Conversions = list[tuple[int, Callable[[Any], Any], bool]]


def _for_one_batch(conversions: _Conversions) -> list[tuple[int, Callable[[Any], Any]]]:
    """The conversions for one batch, a time's remembering its answers: a batch's rows mostly
    share one time, and converting it costs more than looking it up."""
    return [(n, _once_per_value(convert) if is_time else convert) for n, convert, is_time in conversions]


def _once_per_value(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    seen: dict[Any, Any] = {}

    def converted(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            seen[value] = result = convert(value)
            return result

    return converted


def _placeholders(dialect: Dialect, rows: int, columns: int) -> str:
    """`rows` tuples of `columns` placeholders, numbered on across the tuples."""
    return ", ".join(
        "(" + ", ".join(dialect.placeholder(row * columns + n + 1) for n in range(columns)) + ")" for row in range(rows)
    )


# Stand-ins among an insert's default values: the batch's instant; a value made for each row.
_NOW, _EACH_ROW = object(), object()


class MultiRowInsert:
    """One table's `INSERT … VALUES (…), (…) <tail>` for rows whose positions `fields` names."""

    def __init__(self, model: type[DeclarativeBase], fields: Sequence[str], tail: str = "") -> None:
        table = _table(model, fields)
        self.table, self.fields, self.tail = table, tuple(fields), tail
        # The row's columns, and those it leaves to their defaults, in the table's order.
        self.columns = [
            column
            for column in table.columns
            if column.name in self.fields or (column.default is not None and not column.primary_key)
        ]
        self.width = len(self.columns)
        self._sql: dict[tuple[Dialect, int], str] = {}
        self._plans = {dialect: _Plan(self, dialect) for dialect in DIALECTS}

    def sql(self, dialect: Dialect, rows: int) -> str:
        """The statement for `rows` rows (one text per batch size, kept)."""
        sql = self._sql.get((dialect, rows))
        if sql is None:
            names = ", ".join(column.name for column in self.columns)
            tail = f" {self.tail}" if self.tail else ""
            values = _placeholders(dialect, rows, self.width)
            # Only the models' table and column names, and placeholders, go into the text.
            sql = f"INSERT INTO {self.table.name} ({names}) VALUES {values}{tail}"  # noqa: S608
            self._sql[dialect, rows] = sql
        return sql

    def parameters(self, dialect: Dialect, rows: Iterable[tuple[Any, ...]], now: datetime) -> list[Any]:
        """The driver values of `rows`, row after row, each in `self.columns` order. Columns the
        rows leave out get their default; a time's default (utcnow) is `now`, the batch's instant."""
        return self._plans[dialect].parameters(rows, now)


class _Plan:
    """Where each of an insert's columns takes its value from, for one dialect."""

    def __init__(self, insert: MultiRowInsert, dialect: Dialect) -> None:
        self.dialect = dialect
        # Each row is extended by the defaults' values (row + defaults) and picked in column order;
        defaults = [column for column in insert.columns if column.name not in insert.fields]
        self.defaults = [_default_value(column, dialect) for column in defaults]
        position = {name: n for n, name in enumerate(insert.fields)}
        position |= {column.name: len(insert.fields) + n for n, column in enumerate(defaults)}
        self.pick = _picker([position[column.name] for column in insert.columns])
        # then the row's own values that need it are encoded in place, by their column's position,
        self.encoded: _Conversions = [
            (n, encoder, _is_time(column))
            for n, column in enumerate(insert.columns)
            if column.name in insert.fields and (encoder := _encoder(column, dialect)) is not None
        ]
        # and defaults made by a function (say `default=dict`) are made for each row, as the ORM does.
        each_row = {column.name for column, value in zip(defaults, self.defaults, strict=True) if value is _EACH_ROW}
        self.encoded += [
            (n, _made_for_each_row(column, dialect), False)
            for n, column in enumerate(insert.columns)
            if column.name in each_row
        ]

    def parameters(self, rows: Iterable[tuple[Any, ...]], now: datetime) -> list[Any]:
        at = self.dialect.write_time(now) if self.dialect.write_time else now
        defaults = tuple(at if value is _NOW else None if value is _EACH_ROW else value for value in self.defaults)
        encoded = _for_one_batch(self.encoded)
        pick = self.pick
        values: list[Any] = []
        for row in rows:
            start = len(values)
            values += pick(row + defaults)
            for n, encode in encoded:
                values[start + n] = encode(values[start + n])
        return values


def _default_value(column: Column[Any], dialect: Dialect) -> Any:
    """The driver value of a column's default; _NOW for a time's (utcnow), _EACH_ROW for another
    function's."""
    default = column.default
    if isinstance(default, ColumnDefault) and default.is_scalar:
        encoder = _encoder(column, dialect)
        return encoder(default.arg) if encoder else default.arg
    if isinstance(default, ColumnDefault) and default.is_callable:
        return _NOW if _is_time(column) else _EACH_ROW
    # A SQL expression (or a sequence) the statement would have to render: give the value in the row.
    raise TypeError(f"{column.table.name}.{column.name}: a default a multi-row insert cannot write; give the value")


def _made_for_each_row(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """The column's default function, as a conversion of its (empty) place in the row."""
    default = column.default
    if not isinstance(default, ColumnDefault):
        raise TypeError(f"{column.table.name}.{column.name} has no default function")
    make = default.arg  # SQLAlchemy's wrapper, which takes an execution context (none here)
    encoder = _encoder(column, dialect) or (lambda value: value)
    return lambda _: encoder(make(None))


def _picker(indexes: list[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """The values at `indexes`, as a tuple (itemgetter gives a lone value for one index)."""
    if len(indexes) == 1:
        [index] = indexes
        return lambda row: (row[index],)
    return itemgetter(*indexes)


class RowUpdate:
    """`UPDATE <table> SET <column>=?, … WHERE <table>.<key> = ?`, run once per row, for rows
    whose positions `fields` names: the first is the key, the others the columns it sets."""

    def __init__(self, model: type[DeclarativeBase], fields: Sequence[str]) -> None:
        table = _table(model, fields)
        key, *assigned = fields
        columns = [column for column in table.columns if column.name in assigned]  # the table's order
        # Only the models' table and column names, and placeholders, go into the text.
        self._sql = {
            dialect: f"UPDATE {table.name} SET "  # noqa: S608
            + ", ".join(f"{column.name}={dialect.placeholder(n + 1)}" for n, column in enumerate(columns))
            + f" WHERE {table.name}.{key} = {dialect.placeholder(len(columns) + 1)}"
            for dialect in DIALECTS
        }
        columns.append(table.c[key])
        self.pick = _picker([fields.index(column.name) for column in columns])
        # The row's values that need it are encoded in place (by their position in the row), then picked.
        self._encoded: dict[Dialect, _Conversions] = {
            dialect: [
                (n, encoder, _is_time(column))
                for n, column in enumerate(table.c[name] for name in fields)
                if (encoder := _encoder(column, dialect)) is not None
            ]
            for dialect in DIALECTS
        }

    def sql(self, dialect: Dialect) -> str:
        return self._sql[dialect]

    def parameters(self, dialect: Dialect, rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Each row's driver values, in the statement's order."""
        encoded, pick = _for_one_batch(self._encoded[dialect]), self.pick
        if not encoded:
            return [pick(row) for row in rows]
        parameters = []
        for row in rows:
            values = list(row)
            for n, encode in encoded:
                values[n] = encode(values[n])
            parameters.append(pick(values))
        return parameters


_Row = TypeVar("_Row")


class RowReader(Generic[_Row]):
    """A statement's RETURNING `fields` of `table`, read back into rows made by `make`
    (a NamedTuple's _make), each value as the ORM reads its column."""

    def __init__(
        self, model: type[DeclarativeBase], fields: Sequence[str], make: Callable[[Iterable[Any]], _Row]
    ) -> None:
        table = _table(model, fields)
        self.returning = "RETURNING " + ", ".join(fields)
        self.make = make
        columns = [table.c[name] for name in fields]
        self._decoded: dict[Dialect, _Conversions] = {
            dialect: [
                (n, decoder, _is_time(column))
                for n, column in enumerate(columns)
                if (decoder := _decoder(column, dialect)) is not None
            ]
            for dialect in DIALECTS
        }

    def read(self, dialect: Dialect, rows: Iterable[DriverRow]) -> list[_Row]:
        decoded, make = _for_one_batch(self._decoded[dialect]), self.make
        if not decoded:
            return [make(row) for row in rows]
        read: list[_Row] = []
        for row in rows:
            values = list(row)
            for n, decode in decoded:
                values[n] = decode(values[n])
            read.append(make(values))
        return read


def _decoder(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How the driver's value of this column becomes the ORM's; None: as it is."""
    if _is_time(column) and dialect.read_time:
        decode: Callable[[Any], Any] = dialect.read_time
    elif isinstance(column.type, Boolean) and dialect is SQLITE:
        decode = bool  # stored as 0/1
    elif _is_time(column) or isinstance(column.type, Integer | String | Boolean):
        return None
    else:
        raise TypeError(f"{column.table.name}.{column.name}: no reading of {column.type!r} in inbox.table_sql")
    return _or_none(decode) if column.nullable else decode


def _or_none(decode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else decode(value)
