"""Decoding definitions and bodies: shapes enforced, errors carry JSON pointers."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from drift_schema import codec
from drift_schema.api import StartRequest
from drift_schema.nodes import InstructionNode, ScriptNode, WaitNode
from drift_schema.nodes.wait import OnEventWait
from drift_schema.workflow import Bundle, WorkflowDefinition

EXAMPLES = Path(__file__).parents[2] / "examples"


def _bundles() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


@pytest.mark.parametrize("path", _bundles(), ids=lambda p: p.name)
def test_example_bundles_decode(path: Path) -> None:
    """Every example bundle decodes into node and workflow definitions and encodes back to the same JSON."""
    bundle = codec.decode(path.read_bytes(), Bundle)
    assert bundle.node_definitions and bundle.workflow_definitions
    again = codec.decode(codec.encode(bundle), Bundle)
    assert again == bundle


def test_node_type_tag_selects_the_node_struct() -> None:
    """The `type` field picks the node's Struct, with camelCase wire names."""
    node = codec.decode(b'{"id":"n","type":"SCRIPT","output":"{% 1 %}","timeoutMs":5}', ScriptNode | WaitNode)
    assert isinstance(node, ScriptNode) and node.timeout_ms == 5
    wait = codec.decode(
        b'{"id":"w","type":"WAIT","config":{"waitType":"ON_EVENT","event":"paid","timeoutSeconds":3}}',
        ScriptNode | WaitNode,
    )
    assert isinstance(wait, WaitNode) and isinstance(wait.config, OnEventWait)


@pytest.mark.parametrize(
    ("body", "pointer", "fragment"),
    [
        (b'{"id":"x","type":"FOO"}', "/type", "Invalid value 'FOO'"),
        (b'{"id":"x","type":"SCRIPT","bogus":1}', "/bogus", "unknown field `bogus`"),
        (b'{"id":"bad id!","type":"SCRIPT"}', "/id", "matching regex"),
        (
            b'{"id":"x","type":"INSTRUCTION","view":{"inputOptions":[{"id":"a","possibleValues":[{}]}]}}',
            "/view/inputOptions/0/possibleValues/0",
            "missing required field `value`",
        ),
    ],
)
def test_node_errors_carry_a_pointer(body: bytes, pointer: str, fragment: str) -> None:
    """A node definition that does not match its shape names the field at fault."""
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode(body, ScriptNode | InstructionNode)
    assert caught.value.pointer == pointer
    assert fragment in caught.value.message


def test_pointers_name_the_state_at_fault() -> None:
    """Errors inside `states` point at the named state, escaping `/` and `~` per RFC 6901."""
    body = b'{"id":"x","states":{"fine":{"resourceId":"a"},"a/b~c":{"nextNode":3}}}'
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode(body, WorkflowDefinition)
    assert caught.value.pointer == "/states/a~1b~0c/nextNode"


def test_nested_dict_keys_are_named_too() -> None:
    """A fault inside a dependent option of an inline node points through every dict key."""
    body = (
        b'{"id":"x","states":{"s":{"nodeDefinition":{"id":"n","type":"INSTRUCTION","view":{"inputOptions":'
        b'[{"id":"o","possibleDependentValues":{"v":{"id":"p"},"w":{"idx":1}}}]}}}}}'
    )
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode(body, WorkflowDefinition)
    assert caught.value.pointer == "/states/s/nodeDefinition/view/inputOptions/0/possibleDependentValues/w/idx"


def test_start_request_requires_workflow_and_checks_ids() -> None:
    """A start body needs `workflow.id`; a malformed workflowId is refused with its pointer."""
    with pytest.raises(codec.DecodeError) as missing:
        codec.decode(b"{}", StartRequest)
    assert "workflow" in missing.value.message
    with pytest.raises(codec.DecodeError) as bad_id:
        codec.decode(b'{"workflow":{"id":"w"},"workflowId":"no spaces allowed"}', StartRequest)
    assert bad_id.value.pointer == "/workflowId"
    ok = codec.decode(b'{"workflow":{"id":"w"}}', StartRequest)
    assert ok.workflow.version == "ACTIVE"


def test_malformed_json_is_a_decode_error() -> None:
    """Bytes that are not JSON give a DecodeError at the document root."""
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode(b"{not json", StartRequest)
    assert caught.value.pointer == ""


_START = b'{"workflow":{"id":"w"},"params":'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "malformed JSON: JSON is malformed"),
        (_START + b'"\xff"}', "malformed JSON: not valid UTF-8"),
        (_START + b"[" * 100_000 + b"]" * 100_000 + b"}", "malformed JSON: nested too deeply"),
    ],
    ids=["malformed", "not-utf8", "deep"],
)
def test_every_decoder_answers_text_that_is_not_json_alike(data: bytes, message: str) -> None:
    """decode, decode_with and parse turn any text that is not JSON into the same DecodeError at the root."""
    decoder = msgspec.json.Decoder(StartRequest)
    for call in (
        lambda: codec.decode(data, StartRequest),
        lambda: codec.decode_with(decoder, data),
        lambda: codec.parse(data),
    ):
        with pytest.raises(codec.DecodeError) as caught:
            call()
        assert caught.value.pointer == ""
        assert caught.value.message.startswith(message)
