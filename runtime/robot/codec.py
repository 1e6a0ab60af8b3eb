"""The robot wire codec: msgpack with an explicit, safe encoding for numpy arrays.

An array travels as a msgpack map

    {"__ndarray__": true, "dtype": "float32", "shape": [2], "data": <raw little-endian bytes>}

and nothing else: no msgpack extension types, no object arrays and never pickle. The
popular msgpack-numpy decoder calls `pickle.loads` on object arrays, which hands code
execution to whoever is on the other end of the socket; a robot policy server and a
simulator are often run by different people, so the decoder here treats every peer as
untrusted:

- the dtype must be on an allow-list of plain numeric types (`DTYPES`);
- the shape must be a short list of non-negative ints whose product stays under a cap;
- the byte length must match shape × itemsize exactly;
- extension types are rejected, map keys must be strings or bytes.

Decoded arrays are writable copies, so a policy may modify an observation in place.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

import msgpack
import numpy as np

from hud.errors import ProtocolError
from hud.wire import PARSE_ERROR

#: dtypes an array on the wire may have (numpy names); everything else is rejected
DTYPES: tuple[str, ...] = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
)
#: at most this many dimensions per array
MAX_NDIM = 8
#: at most this many elements per array (a 4K RGB frame is 25M)
MAX_ELEMENTS = 1 << 26
#: a whole message may not be larger than this
MAX_MESSAGE_BYTES = 256 * 1024 * 1024

_MARK = "__ndarray__"
_KEYS = frozenset((_MARK, "dtype", "shape", "data"))


class CodecError(ProtocolError):
    """A robot frame that cannot be encoded or safely decoded."""

    def __init__(self, message: str) -> None:
        super().__init__(PARSE_ERROR, message)


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """The wire map of `array` (little-endian, C order).

    Raises:
        CodecError: the dtype is not in `DTYPES` (e.g. an object or string array).
    """
    dtype = np.dtype(array.dtype)
    if dtype.name not in DTYPES:
        raise CodecError(
            f"cannot send an array of dtype {dtype.name!r}; allowed dtypes: "
            f"{', '.join(DTYPES)} (convert with array.astype(...))"
        )
    little = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<"))
    return {_MARK: True, "dtype": dtype.name, "shape": list(array.shape),
            "data": little.tobytes()}


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return encode_array(value)
    if isinstance(value, np.generic):
        if value.dtype.name not in DTYPES:
            raise CodecError(f"cannot send a numpy scalar of dtype {value.dtype.name!r}")
        return value.item()
    raise CodecError(
        f"cannot send a value of type {type(value).__name__} ({value!r:.60}); send dicts, "
        f"lists, str, bytes, numbers, bool, None and numpy arrays"
    )


def encode(message: Any) -> bytes:
    """Pack `message` (dicts, lists, scalars, numpy arrays) into one msgpack frame.

    Raises:
        CodecError: the message holds a value the codec does not carry.
    """
    try:
        packed: bytes = msgpack.packb(message, default=_default, use_bin_type=True)
        return packed
    except CodecError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise CodecError(f"cannot encode the message: {exc}") from exc


def decode_array(spec: dict[str, Any]) -> np.ndarray:
    """Rebuild an array from its wire map, validating everything first.

    Raises:
        CodecError: unknown keys, a dtype off the allow-list, a bad or absurd shape,
            or a byte length that does not match the shape.
    """
    extra = set(spec) - _KEYS
    missing = _KEYS - set(spec)
    if extra or missing:
        raise CodecError(
            f"bad array map: missing {sorted(missing)}, unexpected {sorted(map(str, extra))}; "
            f"an array is {{'__ndarray__': true, 'dtype', 'shape', 'data'}}"
        )
    if spec[_MARK] is not True:
        raise CodecError(f"bad array map: '__ndarray__' must be true, got {spec[_MARK]!r}")
    dtype_name = spec["dtype"]
    if not isinstance(dtype_name, str) or dtype_name not in DTYPES:
        raise CodecError(
            f"refusing array dtype {dtype_name!r:.40}; allowed dtypes: {', '.join(DTYPES)} "
            f"(object and pickled arrays are never decoded)"
        )
    shape = spec["shape"]
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(type(n) is int and n >= 0 for n in shape)):
        raise CodecError(
            f"bad array shape {shape!r:.80}; expected a list of at most {MAX_NDIM} "
            f"non-negative ints"
        )
    count = math.prod(shape)
    if count > MAX_ELEMENTS:
        raise CodecError(f"array shape {shape} has {count} elements; the limit is {MAX_ELEMENTS}")
    data = spec["data"]
    if not isinstance(data, bytes):
        raise CodecError(f"array data must be bytes (msgpack bin), got {type(data).__name__}")
    dtype = np.dtype(dtype_name).newbyteorder("<")
    if len(data) != count * dtype.itemsize:
        raise CodecError(
            f"array data is {len(data)} bytes but shape {shape} of {dtype_name} needs "
            f"{count * dtype.itemsize}"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _object_hook(mapping: dict[Any, Any]) -> Any:
    if _MARK in mapping:
        return decode_array(mapping)
    return mapping


def _reject_ext(code: int, data: bytes) -> NoReturn:
    raise CodecError(f"msgpack extension type {code} is not allowed on the robot wire")


def decode(frame: object) -> Any:
    """Unpack one msgpack frame; array maps become numpy arrays.

    Raises:
        CodecError: the frame is not valid msgpack, too large, uses extension types,
            or carries an array that fails validation.
    """
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise CodecError(f"robot frames are binary msgpack, got {type(frame).__name__}")
    if len(frame) > MAX_MESSAGE_BYTES:
        raise CodecError(f"frame of {len(frame)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        return msgpack.unpackb(
            frame, raw=False, object_hook=_object_hook, ext_hook=_reject_ext,
            strict_map_key=True,
        )
    except CodecError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.ExtraData) as exc:
        raise CodecError(f"not a valid msgpack frame: {type(exc).__name__}: {exc}") from exc
