"""The plain-request fast path of the capture decision accepts only what the serializer accepts, unchanged."""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from decisions.serializers import CaptureRequestSerializer, plain_capture_request

KNOWN = {"keystrokes": None, "mouse_movement": None, "screenshots": None}
texts = st.sampled_from(["keystrokes", "screenshots", "Keystrokes", " keystrokes", "", "a" * 65, "x\x00", "\ud800"])
slugs = texts | st.sampled_from(["ai_agent_training", "performance_evaluation", "mind-reading"]) | st.text(max_size=8)
values = st.none() | st.booleans() | st.integers() | slugs
contexts = st.fixed_dictionaries(
    {},
    optional={
        "app": values | st.sampled_from(["com.microsoft.VSCode", "a" * 256, " padded ", "tab\there"]),
        "domain": values | st.just("github.com"),
        "private_browsing": values,
        "flags": st.lists(values, max_size=17) | values,
        "other": values,
    },
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "purpose": slugs | values,
        "categories": st.lists(texts | values, max_size=4) | values,
        "context": contexts | values,
        "employee": values,
    },
)


def _plain(value):
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# Mostly well-formed requests, each field now and then replaced by something odd.
likely = st.fixed_dictionaries(
    {
        "purpose": st.sampled_from(["ai_agent_training", "research"]) | slugs,
        "categories": st.lists(st.sampled_from(list(KNOWN)), min_size=1, max_size=3, unique=True)
        | st.lists(texts, max_size=2),
    },
    optional={
        "context": st.fixed_dictionaries(
            {},
            optional={
                "app": st.sampled_from(["com.microsoft.VSCode", "", "é.app"]) | values,
                "domain": st.just("github.com") | values,
                "private_browsing": st.booleans() | values,
                "flags": st.lists(st.sampled_from(["kiosk", ""]), max_size=3) | values,
            },
        )
        | values
    },
)


@settings(max_examples=600, deadline=None)
@given(data=st.one_of(likely, likely, likely, requests, values, st.lists(values, max_size=2)))
def test_the_fast_path_answers_as_the_serializer_or_defers_to_it(data):
    fast = plain_capture_request(data, KNOWN)
    event("fast" if fast is not None else "serializer")
    serializer = CaptureRequestSerializer(data=data, context={"known_categories": set(KNOWN)})
    valid = serializer.is_valid()
    if fast is not None:
        assert valid, serializer.errors
        assert _plain(dict(serializer.validated_data)) == fast


def test_an_ordinary_agent_request_takes_the_fast_path():
    body = {
        "purpose": "ai_agent_training",
        "categories": ["keystrokes", "mouse_movement"],
        "context": {"app": "com.microsoft.VSCode", "domain": "github.com", "private_browsing": False},
    }
    assert plain_capture_request(body, KNOWN) == body
    assert plain_capture_request({"purpose": "ai_agent_training", "categories": ["screenshots"]}, KNOWN)
