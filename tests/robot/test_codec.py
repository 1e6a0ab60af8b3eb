"""The robot wire codec: arrays round-trip exactly; unsafe or inconsistent payloads are refused."""

from __future__ import annotations

import pickle

import msgpack
import numpy as np
import pytest

from hud.robot.codec import DTYPES, MAX_ELEMENTS, CodecError, decode, encode


def _raw(message: object) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def _array_map(**overrides: object) -> dict[str, object]:
    spec: dict[str, object] = {"__ndarray__": True, "dtype": "float32", "shape": [2],
                               "data": np.zeros(2, np.float32).tobytes()}
    spec.update(overrides)
    return spec


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_allowed_dtype_round_trips(dtype: str) -> None:
    """An array of each allowed dtype comes back with the same dtype, shape and values."""
    array = (np.arange(12) % 2 if dtype == "bool" else np.arange(12)).astype(dtype).reshape(3, 4)
    back = decode(encode({"a": array}))["a"]
    assert back.dtype == array.dtype and back.shape == (3, 4)
    np.testing.assert_array_equal(back, array)


def test_nested_messages_and_scalars_round_trip() -> None:
    """Maps, lists, numpy scalars and 0-d arrays survive a round trip."""
    message = {"obs": {"x": np.float32(1.5), "img": np.zeros((2, 2, 3), np.uint8)},
               "flags": [True, None, "s"], "scalar": np.array(3, np.int64)}
    back = decode(encode(message))
    assert back["obs"]["x"] == 1.5 and back["obs"]["img"].shape == (2, 2, 3)
    assert back["flags"] == [True, None, "s"] and back["scalar"].shape == ()


def test_big_endian_and_non_contiguous_arrays_round_trip() -> None:
    """Byte order and strides are normalised on the way out."""
    array = np.arange(20, dtype=">f8").reshape(4, 5)[:, ::2]
    np.testing.assert_array_equal(decode(encode({"a": array}))["a"], array)


def test_decoded_arrays_are_writable() -> None:
    """A policy may modify a decoded observation in place."""
    back = decode(encode({"a": np.zeros(3)}))["a"]
    back[0] = 1.0
    assert back[0] == 1.0


def test_object_arrays_are_not_encoded() -> None:
    """An object array is refused on the way out."""
    with pytest.raises(CodecError, match="dtype 'object'"):
        encode({"a": np.array([{}, 1], dtype=object)})


@pytest.mark.parametrize("dtype", ["object", "O", "|O", "<U4", "complex128", "V8", "datetime64"])
def test_dtypes_off_the_allow_list_are_refused(dtype: str) -> None:
    """Object, string, complex, void and time dtypes never decode."""
    with pytest.raises(CodecError, match="refusing array dtype"):
        decode(_raw({"a": _array_map(dtype=dtype)}))


def test_a_pickled_payload_is_never_unpickled() -> None:
    """A msgpack-numpy style object array carrying a pickle is refused without running it."""
    ran: list[str] = []

    class Bomb:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (ran.append, ("pwned",))

    payload = pickle.dumps(np.array([Bomb()], dtype=object))
    with pytest.raises(CodecError, match="refusing array dtype"):
        decode(_raw({"a": _array_map(dtype="object", shape=[1], data=payload)}))
    assert ran == []


def test_msgpack_numpy_maps_stay_plain_data() -> None:
    """msgpack-numpy's own map format is not interpreted: its bytes stay bytes."""
    blob = pickle.dumps([1])
    back = decode(_raw({"nd": True, "type": "|O", "kind": b"O", "shape": [1], "data": blob}))
    assert back["data"] == blob


def test_extension_types_are_refused() -> None:
    """msgpack ExtType frames are refused (nothing custom is deserialised)."""
    with pytest.raises(CodecError, match="extension type 42"):
        decode(msgpack.packb({"a": msgpack.ExtType(42, b"x")}))


def test_a_byte_length_that_does_not_match_the_shape_is_refused() -> None:
    """Data shorter or longer than shape × itemsize is refused."""
    with pytest.raises(CodecError, match="is 7 bytes but shape \\[2\\] of float32 needs 8"):
        decode(_raw({"a": _array_map(data=b"\0" * 7)}))


@pytest.mark.parametrize("shape", [[-1], [2.0], ["2"], [1] * 9, "2", [MAX_ELEMENTS, 2]])
def test_bad_or_absurd_shapes_are_refused(shape: object) -> None:
    """Negative, non-int, too many dims, or too many elements: refused before allocating."""
    with pytest.raises(CodecError, match="shape"):
        decode(_raw({"a": _array_map(shape=shape)}))


def test_array_maps_with_extra_keys_are_refused() -> None:
    """An array map carries exactly its four keys."""
    with pytest.raises(CodecError, match="unexpected \\['order'\\]"):
        decode(_raw({"a": _array_map(order="F")}))


def test_garbage_is_a_codec_error() -> None:
    """Bytes that are not msgpack raise CodecError, not a msgpack internal error."""
    with pytest.raises(CodecError, match="not a valid msgpack frame"):
        decode(b"\xc1\xff\x00")


def test_text_frames_are_refused() -> None:
    """A str (a WebSocket text frame) is not a robot frame."""
    with pytest.raises(CodecError, match="binary msgpack"):
        decode("{}")  # type: ignore[arg-type]
