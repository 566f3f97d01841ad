"""The encoders made once write exactly what json.dumps writes with the same options."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from banksim.core.json_encoders import compact_encoder

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


@given(json_values)
def test_compact_encoding_is_json_dumps_compact_ascii(value):
    assert compact_encoder()(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=True)


@given(json_values)
def test_sorted_encoding_is_json_dumps_with_sorted_keys(value):
    assert compact_encoder(sort_keys=True)(value) == json.dumps(
        value, separators=(",", ":"), ensure_ascii=True, sort_keys=True
    )


def test_an_encoder_is_reusable_and_refuses_what_json_refuses():
    encode = compact_encoder(sort_keys=True)

    assert encode({"b": [1, "é"], "a": None}) == '{"a":null,"b":[1,"\\u00e9"]}'
    assert encode("plain") == '"plain"'
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode({"when": object()})
