"""JSON and timestamps as the stores write and read them.

``dumps`` is the one JSON encoder of the engine: every JSON value that reaches
a database (a spec, an event body, a step's state, a list parameter) is text
made here, never assembled by hand.

Both directions go through orjson first and the standard library where orjson
would answer differently. ``dumps`` of a 330-byte spec takes 0.9 µs where
json's took 4.9, of an event body 0.6 where it took 1.35; ``loads`` of the spec
1.8 µs where it took 3.4; and the engine encodes eight values and decodes three
per task (docs/benchmarks.md). It differs from ``json`` in four ways that matter here,
each sent back to ``json``:

* it writes NaN and Infinity as ``null`` where ``json`` (``allow_nan=False``)
  raises: a text with ``null`` in it is encoded again by ``json``;
* it refuses integers beyond 64 bits when encoding, and *reads* them as floats:
  an encoding error goes to ``json``, and so does a text with a run of 19 or
  more digits when decoding (a number or not);
* it writes datetimes, dataclasses and subclasses of str, int, dict and list in
  its own way: they go to ``json``, which writes the subclasses as it always
  did and refuses the rest with its own message;
* it refuses texts ``json`` reads (NaN, ``1e400``, a lone surrogate escape):
  a decoding error goes to ``json``, which reads them or raises as before.

What remains different: a ``uuid.UUID`` or a plain ``enum.Enum`` member, which
``json`` refuses, orjson writes as its text or value (nothing in the engine
hands it either), and a float may be spelled differently (``1e-7`` for
``1e-07``), the same number.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from sys import intern
from typing import Any

import orjson

# json.dumps with these options would build a JSONEncoder per call; the C encoder
# it ends up in is called directly (same output, same errors). The stdlib encoder
# where the C one is missing.
_DEFAULT = json.JSONEncoder().default
_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_ENCODE_STR: Callable[[str], str] = json.encoder.encode_basestring
_ENCODE_SLOW = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_ENCODE_NAN = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def compact_encoder(markers: dict[int, Any] | None, *, allow_nan: bool) -> Any:
    """json's C encoder with compact separators and ``ensure_ascii`` off (call it
    as ``"".join(encode(value, 0))``), or None where the C accelerator is missing.
    ``markers`` None skips the circular check: such an encoder keeps no state
    between calls and any thread may share it; one with markers belongs to one
    thread at a time."""
    if _C_ENCODER is None:  # pragma: no cover
        return None
    return _C_ENCODER(markers, _DEFAULT, _ENCODE_STR, None, ":", ",", False, False, allow_nan)


# One C encoder per thread for every call (building one was a third of a small
# body's encoding, and the engine encodes ~7 values per task). Its circular-
# reference markers empty themselves as each container is finished; a call that
# raised may leave some behind, and then the thread takes a fresh encoder. Per
# thread, because the event loop and SQLite's writer thread both encode, and two
# calls sharing one set of markers could take each other's containers for a circle.
_LOCAL = threading.local()


def _fresh() -> tuple[dict[int, Any], Any]:
    markers: dict[int, Any] = {}
    pair = (markers, compact_encoder(markers, allow_nan=False))
    _LOCAL.pair = pair
    return pair


# what orjson hands to ``default`` goes to json instead (see the module's docstring)
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _to_json(_value: Any) -> Any:
    """orjson's ``default``: what reaches it goes to json (orjson raises it as
    its own ``JSONEncodeError``, a TypeError)."""
    raise TypeError


def _standard(value: Any) -> str:
    """json's C encoder, one per thread (the fallback of ``dumps``)."""
    if _C_ENCODER is None:  # pragma: no cover
        return _ENCODE_SLOW(value)
    try:
        markers, encode = _LOCAL.pair
    except AttributeError:
        markers, encode = _fresh()
    if markers:
        markers, encode = _fresh()
    return "".join(encode(value, 0))


def dumps(value: Any) -> str:
    """Compact JSON the database accepts: no NaN/Infinity (ValueError here, in the
    writer, rather than a failed flush), and NUL characters, which Postgres jsonb
    refuses, replaced by U+FFFD. The text and the errors are ``json``'s, apart
    from what the module's docstring names."""
    if type(value) is str:
        text = _ENCODE_STR(value)
    else:
        try:
            raw = orjson.dumps(value, default=_to_json, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError is one
            text = _standard(value)
        else:
            # a NaN or an Infinity would be a null here: json decides
            text = _standard(value) if b"null" in raw else raw.decode()
    return _nul_replaced(text, value)


def dumps_rows(rows: list[Any]) -> str:
    """``dumps`` of the rows a statement reads with ``json_array_elements`` (or
    SQLite's ``json_each``), whose cells the engine built: text (JSON values are
    already ``dumps``'s text there), integers, booleans and None; never a float,
    so never a NaN that orjson would write as ``null``. ``dumps`` sends any text
    with a ``null`` to json, and a row's NULL cells are common (a task without an
    idempotency key, a claim token not found): here they stay on orjson. What
    orjson refuses (an integer beyond 64 bits, a lone surrogate) goes to json."""
    try:
        text = orjson.dumps(rows, default=_to_json, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return _nul_replaced(_standard(rows), rows)
    return _nul_replaced(text, rows)


def _nul_replaced(text: str, value: Any) -> str:
    """``text`` (``value`` encoded), or, where it holds a NUL, ``value`` encoded
    again with each NUL replaced by U+FFFD."""
    if "\\u0000" in text:
        return _ENCODE_NAN(_without_nul(value))
    return text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


# An integer orjson would read as a float (beyond 64 bits) is a run of 19 digits
# or more: the text's bytes with each digit made "1" and anything else "0" show
# one as a run of "1"s (0.4 µs for a 330-byte spec, where a regular expression
# took 2.6 µs, as long as json's whole parse).
_DIGITS = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_LONG_RUN = b"1" * 19


def loads(text: str | bytes) -> Any:
    """``json.loads``, where the common empty object costs no parse (a new dict
    each time, as a parse would give); through orjson where it reads the text as
    json would (see the module's docstring)."""
    if text == "{}":
        return {}
    # surrogatepass: a lone surrogate makes bytes orjson refuses, and json reads
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if data.translate(_DIGITS).find(_LONG_RUN) < 0:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


# Strings up to this long are shared between decoded values (see ``shared``).
SHARED_TEXT = 64
# The one rule for when claimed specs are shared (``Broker.claim``): by a worker
# that may hold this many runs at once. A one-step spec repeats ~1.5 KB of keys
# and short strings, so from here on its copies could weigh 1.5 MB and more (15 MB
# at 10,000 waiting runs); below, less than that, and the walk (a few µs a spec)
# would cost every claim for little.
SHARE_FROM_RUNS = 1_000


def shared(value: Any) -> Any:
    """A decoded JSON value whose keys and short strings are the process's one
    copy of that text (``sys.intern``; interned strings still die with their last
    user). A parse shares nothing with the one before it, so 10,000 claimed
    tasks of one template held 10,000 copies of each key and each short value of
    its spec (about 1.5 KB a task): a worker keeps each spec for the whole run."""
    if type(value) is dict:
        return _shared_dict(value)
    if type(value) is list:
        return _shared_list(value)
    if type(value) is str and len(value) <= SHARED_TEXT:
        return intern(value)
    return value


# One call per object or array, not per value: a claimed spec has several
# times more scalars than containers, and this runs for every claimed task
# (the two loops are alike on purpose: a shared helper is a call per value).
def _shared_dict(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        kind = type(v)
        if kind is str and len(v) <= SHARED_TEXT:
            out[intern(k)] = intern(v)
        elif kind is dict:
            out[intern(k)] = _shared_dict(v)
        else:
            out[intern(k)] = _shared_list(v) if kind is list else v
    return out


def _shared_list(value: list[Any]) -> list[Any]:
    return [
        intern(v)
        if type(v) is str and len(v) <= SHARED_TEXT
        else _shared_dict(v)
        if type(v) is dict
        else _shared_list(v)
        if type(v) is list
        else v
        for v in value
    ]


def utc(value: datetime) -> datetime:
    """An aware timestamp in UTC (a naive one is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_ts(text: str) -> datetime:
    """SQLite's ``YYYY-MM-DD HH:MM:SS.SSS`` (UTC) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def format_ts(value: datetime) -> str:
    """An aware or naive (UTC) timestamp as SQLite's queries compare it."""
    return utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
