"""A container's manifest on the host: strict models refuse every hostile field, by name."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest

from hud import Environment
from hud.clients.untrusted import parse_manifest, ssh_params
from hud.errors import ConfigError, ProtocolError
from hud.messages import Binding
from tests.manifestkit import DELETE, HOST_PUBKEY, valid_manifest, with_field

HOSTILE_NAMES = ["shell$(touch FILE)", "a b", "x;id", "%h", "`id`", "a\nb", "", "-oProxyCommand=x",
                 "../x", "shell'", 'shell"', "x" * 65, "é"]


def test_a_valid_manifest_passes_with_its_params() -> None:
    """A daemon's manifest comes back with every binding and param it had."""
    manifest = parse_manifest(valid_manifest(), "container 'c1'")
    shell, tools, desktop = manifest["bindings"]
    assert shell["params"]["user"] == "agent" and shell["params"]["cwd"] == "/workspace"
    assert tools["params"]["path"] == "/mcp"
    assert (desktop["params"]["width"], desktop["params"]["display"]) == (1280, ":1")
    assert manifest["env"]["concurrency"] == 1


def test_later_keys_at_the_top_and_in_env_are_kept() -> None:
    """The protocol may grow: unknown top-level and env keys pass through."""
    manifest = with_field("env.concurrency", 4)
    manifest["future"] = {"x": 1}
    parsed = parse_manifest(manifest, "container 'c1'")
    assert parsed["env"]["concurrency"] == 4 and parsed["future"] == {"x": 1}


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_binding_names_are_refused(name: str) -> None:
    """A capability name outside [A-Za-z0-9_.-] (or too long) is refused, field named."""
    with pytest.raises(ProtocolError, match=r"container 'c1' sent an invalid manifest.*"
                                            r"bindings\[0\]\.name: capability name"):
        parse_manifest(with_field("bindings.0.name", name), "container 'c1'")


@pytest.mark.parametrize("protocol", ["ssh", "ssh/2;id", "ssh/2 x", "SSH/2", "ssh/$(id)", "ssh/2\n"])
def test_hostile_protocols_are_refused(protocol: str) -> None:
    """A protocol id that is not KIND/VERSION of a safe charset is refused."""
    with pytest.raises(ProtocolError, match=r"bindings\[0\]\.protocol: binding protocol"):
        parse_manifest(with_field("bindings.0.protocol", protocol), "container 'c1'")


@pytest.mark.parametrize("url", ["http://127.0.0.1:80", "tcp://127.0.0.1:99999", "tcp://a b:1",
                                 "tcp://127.0.0.1", "unix:relative.sock", "tcp://127.0.0.1:1\n",
                                 "unix:///run/x y.sock", "tcp://$(id):22"])
def test_hostile_urls_are_refused(url: str) -> None:
    """A url other than tcp://HOST:PORT or unix:///PATH of a safe charset is refused."""
    with pytest.raises(ProtocolError, match=r"bindings\[0\]\.url: binding url"):
        parse_manifest(with_field("bindings.0.url", url), "container 'c1'")


@pytest.mark.parametrize("url", ["tcp://127.0.0.1:2222", "tcp://[::1]:2222", "tcp://localhost:1",
                                 "unix:///run/hud/x.sock", "unix:/run/x.sock"])
def test_urls_a_tunnel_reaches_pass(url: str) -> None:
    """Loopback TCP (v4 and v6), host names and absolute unix paths are accepted."""
    assert parse_manifest(with_field("bindings.0.url", url), "c")["bindings"][0]["url"] == url


@pytest.mark.parametrize("user", ["-oProxyCommand=touch FILE", "root\n", "a b", "$(id)", "a@b", ""])
def test_hostile_ssh_users_are_refused(user: str) -> None:
    """The ssh user must be a POSIX login name: no option, space, newline or shell syntax."""
    with pytest.raises(ProtocolError, match=r"bindings\[0\]\.params\.user: ssh user"):
        parse_manifest(with_field("bindings.0.params.user", user), "container 'c1'")


@pytest.mark.parametrize("pubkey", [
    HOST_PUBKEY + "\nc1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAttackerKeyAttackerKeyAttackerKey",
    HOST_PUBKEY + "\n",
    "ssh-dss " + HOST_PUBKEY.split()[1],
    "ssh-rsa " + HOST_PUBKEY.split()[1],  # the blob says ssh-ed25519
    "ssh-ed25519 " + base64.b64encode(b"not a key blob at all").decode(),
    "@cert-authority * " + HOST_PUBKEY,
    HOST_PUBKEY + " comment\x1b[2J",
])
def test_hostile_host_keys_are_refused(pubkey: str) -> None:
    """host_pubkey must be one line of a known key type whose blob names that type."""
    with pytest.raises(ProtocolError, match=r"bindings\[0\]\.params\.host_pubkey: host_pubkey"):
        parse_manifest(with_field("bindings.0.params.host_pubkey", pubkey), "container 'c1'")


def test_a_host_key_comment_is_allowed_but_not_used() -> None:
    """A printable comment passes; known_hosts gets only TYPE BASE64."""
    binding = parse_manifest(with_field("bindings.0.params.host_pubkey", HOST_PUBKEY + " me@host"),
                             "c")["bindings"][0]
    assert ssh_params(binding).known_hosts_key() == HOST_PUBKEY


@pytest.mark.parametrize("key", ["", "-----BEGIN OPENSSH PRIVATE KEY-----\n$(id)\n"
                                     "-----END OPENSSH PRIVATE KEY-----\n", "x" * 100])
def test_a_client_key_must_be_one_openssh_key_block(key: str) -> None:
    """client_key must be one OpenSSH private key block of base64 lines."""
    with pytest.raises(ProtocolError, match=r"params\.client_key: client_key"):
        parse_manifest(with_field("bindings.0.params.client_key", key), "container 'c1'")


def test_ssh_params_are_a_closed_set() -> None:
    """An unknown key in an ssh binding's params is refused (ssh/2 defines them all)."""
    with pytest.raises(ProtocolError, match=r"params\.ProxyCommand: Extra inputs"):
        parse_manifest(with_field("bindings.0.params.ProxyCommand", "touch FILE"), "c")


def test_a_missing_ssh_key_is_named() -> None:
    """An ssh binding without client_key: the missing field is named."""
    with pytest.raises(ProtocolError, match=r"bindings\[0\]\.params\.client_key: Field required"):
        parse_manifest(with_field("bindings.0.params.client_key", DELETE), "c")


@pytest.mark.parametrize("path", ["@evil.example/mcp", "/mcp?x=1", "mcp", "/mcp#x", "/m\\cp"])
def test_an_mcp_path_cannot_redirect_the_client(path: str) -> None:
    """The MCP path is appended to http://127.0.0.1:PORT: only an absolute plain path."""
    with pytest.raises(ProtocolError, match=r"bindings\[1\]\.params\.path: mcp path"):
        parse_manifest(with_field("bindings.1.params.path", path), "c")


def test_screen_sizes_are_bounded_ints() -> None:
    """An rfb width that is not an int in 1..16384 is refused."""
    with pytest.raises(ProtocolError, match=r"bindings\[2\]\.params\.width"):
        parse_manifest(with_field("bindings.2.params.width", 10**9), "c")


def test_duplicate_binding_names_are_refused() -> None:
    """Two bindings with one name: which one a tunnel reaches would be ambiguous."""
    with pytest.raises(ProtocolError, match="capability name 'shell' appears twice"):
        parse_manifest(with_field("bindings.1.name", "shell"), "c")


@pytest.mark.parametrize("data", [[], "manifest", None, 5])
def test_a_manifest_that_is_not_an_object_is_refused(data: Any) -> None:
    """A list, string, null or number instead of an object: a clear error, not a crash."""
    with pytest.raises(ProtocolError, match=r"sent an invalid manifest.*manifest: Input should be"):
        parse_manifest(data, "container 'c1'")


def test_a_long_value_is_cut_in_the_message() -> None:
    """A megabyte-long hostile name does not flood the error message."""
    with pytest.raises(ProtocolError) as caught:
        parse_manifest(with_field("bindings.0.name", "$" * 1_000_000), "c")
    assert len(str(caught.value)) < 2000


def test_env_authors_get_the_rule_at_add_capability() -> None:
    """An environment cannot publish a capability whose name the host would refuse."""
    with pytest.raises(ConfigError, match=r"capability name 'a b' is not allowed"):
        Environment(name="x").add_capability("a b", protocol="echo/1", url="tcp://127.0.0.1:1")


def test_binding_names_the_daemon_uses_pass() -> None:
    """Every binding name and protocol id a shipped capability uses is allowed."""
    from hud.messages import BINDING_PROTOCOLS

    for kind, protocol in BINDING_PROTOCOLS.items():
        Binding(name=kind, protocol=protocol, url="tcp://127.0.0.1:1")


def test_seeded_fuzz_never_crashes_and_never_passes_a_bad_name() -> None:
    """2,000 seeded mutations: each parses or is a ProtocolError; what passes is valid."""
    rng = random.Random(1234)
    alphabet = "aZ09_.-/$`;%\n\x00 '\"\\@:[]{}é"
    text = json.dumps(valid_manifest())
    for _ in range(2000):
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        try:
            data = json.loads("".join(chars))
        except ValueError:
            continue
        try:
            parsed = parse_manifest(data, "fuzz")
        except ProtocolError:
            continue
        for binding in parsed["bindings"]:
            assert Binding.NAME.fullmatch(binding["name"]), binding["name"]
            if binding["protocol"].startswith("ssh/"):
                assert "\n" not in ssh_params(binding).host_pubkey
