"""Unit tests for shared.auth against conda-store 2025.2.2 (reference §2 and samples.json)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from shared.auth import (
    ADMIN_PERMISSIONS,
    AUTHENTICATED_ROLE_BINDINGS,
    EXPIRATION_ERROR,
    SUBSET_ERROR,
    UNAUTHENTICATED_ROLE_BINDINGS,
    AuthenticationToken,
    DummyAuthenticator,
    InvalidArnError,
    InvalidRoleError,
    OAuthAuthenticator,
    OAuthError,
    Permission,
    Role,
    TokenCodec,
    TokenMintError,
    UnknownRoleError,
    arn_matches,
    decode_token,
    effective_bindings,
    encode_token,
    entity_permissions,
    extract_credential,
    is_arn_subset,
    is_authorized,
    is_subset_bindings,
    is_visible,
    list_filter_patterns,
    mint_token,
    permission_response_data,
    role_permissions,
    roles_to_permissions,
    split_binding_key,
    sql_like_patterns,
    storable_role,
)

SECRET = "unit-test-secret-" + "x" * 48
P = Permission

# Recorded in samples.json (conda-store 2025.2.2): every token there expires at this instant.
SAMPLE_EXP = 1795551653
SAMPLE_EXP_DT = datetime.fromtimestamp(SAMPLE_EXP, UTC)
SAMPLE_LOGIN_COOKIE = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTU1NTE2NTMsInByaW1hcnlfbmFtZXNwYWNlIjoidXNl"
    "cm5hbWUiLCJyb2xlX2JpbmRpbmdzIjp7IiovKiI6WyJhZG1pbiJdfX0.d85BLJcWpQ3QPzI4Rfo4zyHuonhg2ckSMl1tm8CrJKY"
)
SAMPLE_TOKEN_POST_UNAUTH = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTU1NTE2NTMsInByaW1hcnlfbmFtZXNwYWNlIjoiZGVmYXV"
    "sdCIsInJvbGVfYmluZGluZ3MiOnsiZGVmYXVsdC8qIjpbInZpZXdlciJdLCJmaWxlc3lzdGVtLyoiOlsidmlld2VyIl19fQ"
    ".9ISvbfdiZbkD7EhVhLji3tmPqCcMqPHCWV74H7Jk5VA"
)
SAMPLE_TOKEN_POST_AUTH = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTU1NTE2NTMsInByaW1hcnlfbmFtZXNwYWNlIjoidXNlcm5"
    "hbWUiLCJyb2xlX2JpbmRpbmdzIjp7ImRlZmF1bHQvKiI6WyJ2aWV3ZXIiXSwiZmlsZXN5c3RlbS8qIjpbInZpZXdlciJdLCIq"
    "LyoiOlsiYWRtaW4iXX19.T6ULd7MNDmWeQG6sVB4bD8lJXgXJOXBEjyPaIITvAM8"
)
SAMPLE_TOKEN_POST_NARROW = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE3OTU1NTE2NTMsInByaW1hcnlfbmFtZXNwYWNlIjoiZGVmYXV"
    "sdCIsInJvbGVfYmluZGluZ3MiOnsiZGVmYXVsdC8qIjpbInZpZXdlciJdfX0.EoYqrlnuanEoiq0arnhicG8qzQBUUjMDwTNY"
    "5zz2ZMM"
)
VIEWER_WIRE = ["environment::read", "namespace-role-mapping::read", "namespace::read"]
ADMIN_WIRE = [
    "build::cancel",
    "build::delete",
    "environment::delete",
    "environment::read",
    "environment::solve",
    "environment::update",
    "environment:create",
    "namespace-role-mapping::create",
    "namespace-role-mapping::delete",
    "namespace-role-mapping::read",
    "namespace-role-mapping::update",
    "namespace::create",
    "namespace::delete",
    "namespace::read",
    "namespace::update",
    "setting::read",
    "setting::update",
]
SAMPLE_PERMISSION_UNAUTH = {
    "authenticated": False,
    "primary_namespace": "default",
    "entity_permissions": {"default/*": VIEWER_WIRE},
    "entity_roles": {"default/*": ["viewer"]},
    "expiration": None,
}
SAMPLE_PERMISSION_AUTH = {
    "authenticated": True,
    "primary_namespace": "username",
    "entity_permissions": {
        "default/*": VIEWER_WIRE,
        "filesystem/*": VIEWER_WIRE,
        "*/*": ADMIN_WIRE,
    },
    "entity_roles": {"default/*": ["viewer"], "filesystem/*": ["viewer"], "*/*": ["admin"]},
    "expiration": "2026-11-24T20:20:53Z",
}


def unsigned_part(token: str) -> str:
    """Header and payload segments: identical to upstream's when claims and key order agree."""
    return token.rsplit(".", 1)[0]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# --- permissions and roles ------------------------------------------------------------------------


def test_permission_wire_values() -> None:
    assert {p.value for p in Permission} == set(ADMIN_WIRE)
    assert P.ENVIRONMENT_CREATE == "environment:create"
    assert P.ENVIRONMENT_READ == "environment::read"
    assert P.SETTING_UPDATE == "setting::update"
    assert len(Permission) == 17


def test_viewer_permissions() -> None:
    assert role_permissions("viewer") == {
        P.ENVIRONMENT_READ,
        P.NAMESPACE_READ,
        P.NAMESPACE_ROLE_MAPPING_READ,
    }


@pytest.mark.parametrize("role", ["editor", "developer", Role.EDITOR, Role.DEVELOPER])
def test_editor_and_developer_permissions(role: str) -> None:
    assert role_permissions(role) == {
        P.BUILD_CANCEL,
        P.ENVIRONMENT_CREATE,
        P.ENVIRONMENT_READ,
        P.ENVIRONMENT_UPDATE,
        P.ENVIRONMENT_SOLVE,
        P.NAMESPACE_READ,
        P.NAMESPACE_ROLE_MAPPING_READ,
        P.SETTING_READ,
    }


def test_admin_permissions() -> None:
    assert role_permissions("admin") == set(Permission) == ADMIN_PERMISSIONS
    assert sorted(p.value for p in role_permissions("admin")) == ADMIN_WIRE


def test_editor_lacks_destructive_permissions() -> None:
    perms = role_permissions("editor")
    for p in (P.ENVIRONMENT_DELETE, P.BUILD_DELETE, P.NAMESPACE_CREATE, P.SETTING_UPDATE):
        assert p not in perms


def test_developer_lookup_prefers_editor_then_falls_back() -> None:
    only_developer = {"developer": frozenset({P.BUILD_CANCEL})}
    assert role_permissions("developer", only_developer) == {P.BUILD_CANCEL}
    both = {"editor": frozenset({P.SETTING_READ}), "developer": frozenset({P.BUILD_CANCEL})}
    assert role_permissions("developer", both) == {P.SETTING_READ}


def test_unknown_role_raises() -> None:
    with pytest.raises(UnknownRoleError):
        role_permissions("superuser")
    assert roles_to_permissions([]) == frozenset()


def test_storable_role() -> None:
    assert storable_role("editor") == "developer"
    assert Role.EDITOR.stored is Role.DEVELOPER
    assert storable_role("viewer") == "viewer"
    with pytest.raises(InvalidRoleError, match="invalid entity=owner"):
        storable_role("owner")
    with pytest.raises(InvalidRoleError, match="invalid role=owner"):
        storable_role("owner", mapping_version=2)


# --- ARN matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "arn", "expected"),
    [
        ("default/*", "default", True),
        ("default/*", "default/env", True),
        ("default/*", "defaults/env", False),
        ("default/*", "", False),
        ("*/*", "", True),
        ("*/*", "any", True),
        ("*/*", "any/thing", True),
        ("*/env", "", True),
        ("*/env", "ns/env", True),
        ("*/env", "ns/other", False),
        ("a*b*/c*", "ab/c", True),
        ("a*b*/c*", "axxbyy/cz", True),
        ("a*b*/c*", "axxbyy", True),
        ("a*b*/c*", "ba/c", False),
        ("a*b*/c*", "ab/dc", False),
        ("ns/env", "ns", True),
        ("ns/env", "ns/env", True),
        ("ns/env", "ns/env2", False),
        ("ns/*", "ns/a/b", False),
        ("a.b/*", "aXb/env", False),
        ("a.b/*", "a.b/env", True),
        ("default/*", "default\n", False),
        ("*/*", "bad ns/env", False),
    ],
)
def test_arn_matching(key: str, arn: str, expected: bool) -> None:
    assert arn_matches(key, arn) is expected


@pytest.mark.parametrize(
    "key", ["", "default", "*", "/", "a/", "/b", "a/b/c", "a b/c", "a/b:c", "ns/é"]
)
def test_invalid_binding_keys(key: str) -> None:
    with pytest.raises(InvalidArnError, match="invalid arn="):
        split_binding_key(key)
    with pytest.raises(InvalidArnError):
        arn_matches(key, "x/y")


def test_valid_binding_key_characters() -> None:
    assert split_binding_key("A-z0+_@$&?^~.=*/x") == ("A-z0+_@$&?^~.=*", "x")


@pytest.mark.parametrize(
    ("narrow", "wide", "expected"),
    [
        ("team/*", "*/*", True),
        ("*/*", "team/*", False),
        ("team/env", "team/*", True),
        ("team/*", "team/*", True),
        ("ab*/c", "a*/c", True),
        ("a*/c", "ab*/c", False),
        ("other/*", "team/*", False),
        ("a*b*/c*", "*/*", True),
    ],
)
def test_arn_subset(narrow: str, wide: str, expected: bool) -> None:
    assert is_arn_subset(narrow, wide) is expected


# --- effective bindings and permissions -----------------------------------------------------------


def test_default_bindings_anonymous() -> None:
    assert effective_bindings(None, False) == {"default/*": ["viewer"]}
    assert dict(UNAUTHENTICATED_ROLE_BINDINGS) == {"default/*": ("viewer",)}


def test_default_bindings_authenticated() -> None:
    token = AuthenticationToken(primary_namespace="bob")
    assert effective_bindings(token, True) == {
        "default/*": ["viewer"],
        "filesystem/*": ["viewer"],
    }
    assert list(AUTHENTICATED_ROLE_BINDINGS) == ["default/*", "filesystem/*"]


def test_anonymous_ignores_db_bindings() -> None:
    assert effective_bindings(None, False, db_bindings={"*/*": ["admin"]}) == {
        "default/*": ["viewer"]
    }


def test_token_on_anonymous_path_is_merged() -> None:
    token = AuthenticationToken(role_bindings={"x/*": ["admin"]})
    assert effective_bindings(token, False) == {"default/*": ["viewer"], "x/*": ["admin"]}


def test_later_sources_replace_roles_for_identical_key() -> None:
    token = AuthenticationToken(role_bindings={"default/*": ["admin"], "t/*": ["viewer"]})
    merged = effective_bindings(
        token,
        True,
        db_bindings={"t/*": {"developer"}, "filesystem/*": []},
    )
    assert merged == {
        "default/*": ["admin"],
        "filesystem/*": [],
        "t/*": ["developer"],
    }
    assert list(merged) == ["default/*", "filesystem/*", "t/*"]
    # replaced, not unioned: the db's empty list wipes the default viewer on filesystem/*
    assert entity_permissions(merged, "filesystem/env") == set()
    assert P.ENVIRONMENT_DELETE in entity_permissions(merged, "default/env")


def test_narrowing_by_replacement_removes_default_rights() -> None:
    token = AuthenticationToken(role_bindings={"default/*": []})
    merged = effective_bindings(token, False)
    assert not is_authorized(merged, "default/env", P.ENVIRONMENT_READ)


def test_permissions_union_over_matching_keys() -> None:
    bindings = {"team/*": ["viewer"], "*/special": ["editor"], "*/*": []}
    assert entity_permissions(bindings, "team/special") == role_permissions("editor")
    assert entity_permissions(bindings, "team/other") == role_permissions("viewer")
    assert entity_permissions(bindings, "team") == role_permissions("editor")
    assert entity_permissions(bindings, "else/other") == set()


def test_is_authorized() -> None:
    anon = effective_bindings(None, False)
    assert is_authorized(anon, "default/env", P.ENVIRONMENT_READ)
    assert is_authorized(anon, "default", {P.NAMESPACE_READ, P.NAMESPACE_ROLE_MAPPING_READ})
    assert not is_authorized(anon, "default/env", P.ENVIRONMENT_CREATE)
    assert not is_authorized(anon, "namespace1/name3", P.ENVIRONMENT_READ)
    assert not is_authorized(anon, "", P.SETTING_READ)
    admin = {"*/*": ["admin"]}
    assert is_authorized(admin, "", [P.SETTING_READ, P.SETTING_UPDATE])
    assert is_authorized(admin, "newns", P.NAMESPACE_CREATE)
    assert is_authorized(anon, "nowhere/x", [])
    ns_admin = {"team/*": ["admin"]}
    assert not is_authorized(ns_admin, "", P.SETTING_READ)
    assert is_authorized(ns_admin, "team", P.SETTING_UPDATE)


def test_unknown_role_in_matching_binding_raises() -> None:
    with pytest.raises(UnknownRoleError):
        entity_permissions({"*/*": ["root"]}, "a/b")


def test_custom_role_mappings() -> None:
    mappings = {"viewer": frozenset({P.ENVIRONMENT_READ}), "auditor": frozenset({P.SETTING_READ})}
    assert is_authorized({"*/*": ["auditor"]}, "", P.SETTING_READ, mappings)


# --- list filtering -------------------------------------------------------------------------------


def test_list_filter_patterns() -> None:
    bindings = {
        "default/*": ["viewer"],
        "filesystem/*": [],
        "my_ns/env_1": ["admin"],
        "a*b*/c*": ["viewer"],
        "default/*x": ["viewer"],
    }
    assert list_filter_patterns(bindings) == [
        ("default", "%"),
        ("filesystem", "%"),
        ("my\\_ns", "env\\_1"),
        ("a%b%", "c%"),
        ("default", "%x"),
    ]
    assert list_filter_patterns({"*/*": ["admin"], "**/*": ["viewer"]}) == [("%", "%"), ("%%", "%")]
    assert list_filter_patterns({}) == []
    assert sql_like_patterns("*/*") == ("%", "%")


def test_is_visible_regardless_of_role() -> None:
    bindings = {"default/*": [], "team/app*": ["viewer"]}
    assert is_visible(bindings, "default")
    assert is_visible(bindings, "default", "anything")
    assert is_visible(bindings, "team")
    assert is_visible(bindings, "team", "app-1")
    assert not is_visible(bindings, "team", "other")
    assert not is_visible(bindings, "namespace1")
    assert not is_visible({"my_ns/*": []}, "myXns")


# --- /permission/ data ----------------------------------------------------------------------------


def test_permission_data_unauthenticated_matches_sample() -> None:
    data = permission_response_data(None, effective_bindings(None, False))
    assert data == SAMPLE_PERMISSION_UNAUTH
    assert json.dumps(data) == json.dumps(SAMPLE_PERMISSION_UNAUTH)


def test_permission_data_authenticated_matches_sample() -> None:
    token = AuthenticationToken(
        exp=SAMPLE_EXP, primary_namespace="username", role_bindings={"*/*": ["admin"]}
    )
    data = permission_response_data(token, effective_bindings(token, True))
    # json.dumps compares key order too, which upstream preserves from the merge order
    assert json.dumps(data) == json.dumps(SAMPLE_PERMISSION_AUTH)


def test_permission_data_uses_default_namespace_when_anonymous() -> None:
    data = permission_response_data(None, {}, default_namespace="public")
    assert data["primary_namespace"] == "public"
    assert data["entity_permissions"] == {} and data["entity_roles"] == {}


# --- tokens ---------------------------------------------------------------------------------------


def test_token_defaults() -> None:
    before = datetime.now(UTC)
    token = AuthenticationToken()
    assert token.primary_namespace == "default"
    assert token.role_bindings == {}
    assert before + timedelta(days=1) <= token.exp <= datetime.now(UTC) + timedelta(days=1)
    assert token.exp.tzinfo is not None


def test_token_rejects_invalid_binding_key() -> None:
    with pytest.raises(ValidationError):
        AuthenticationToken(role_bindings={"not-an-arn": ["admin"]})


def test_naive_exp_is_utc() -> None:
    token = AuthenticationToken(exp=datetime(2030, 1, 1, 12, 0, 0))
    assert token.exp == datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_jwt_round_trip() -> None:
    token = AuthenticationToken(
        exp=datetime.now(UTC) + timedelta(hours=2),
        primary_namespace="alice",
        role_bindings={"alice/*": ["admin"], "default/*": ["viewer", "editor"]},
    )
    encoded = encode_token(token, SECRET)
    decoded = decode_token(encoded, SECRET)
    assert decoded is not None
    assert decoded.primary_namespace == "alice"
    assert decoded.role_bindings == token.role_bindings
    assert decoded.exp == token.exp.replace(microsecond=0)
    claims = jwt.decode(encoded, SECRET, algorithms=["HS256"])
    assert isinstance(claims["exp"], int)
    assert jwt.get_unverified_header(encoded)["alg"] == "HS256"


def test_encoding_is_byte_compatible_with_upstream() -> None:
    token = AuthenticationToken(
        exp=SAMPLE_EXP, primary_namespace="username", role_bindings={"*/*": ["admin"]}
    )
    assert unsigned_part(encode_token(token, SECRET)) == unsigned_part(SAMPLE_LOGIN_COOKIE)


def test_sample_token_with_unknown_secret_is_anonymous() -> None:
    assert decode_token(SAMPLE_LOGIN_COOKIE, SECRET) is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage",
        "a.b.c",
        "Bearer",
        SAMPLE_LOGIN_COOKIE[:-3] + "AAA",
    ],
)
def test_garbled_tokens_are_anonymous(bad: str) -> None:
    assert decode_token(bad, SECRET) is None


def test_expired_token_is_anonymous() -> None:
    token = AuthenticationToken(exp=datetime.now(UTC) - timedelta(seconds=5))
    assert decode_token(encode_token(token, SECRET), SECRET) is None


def test_wrong_secret_or_algorithm_is_anonymous() -> None:
    token = AuthenticationToken()
    assert decode_token(encode_token(token, SECRET), SECRET + "other") is None
    unsigned = jwt.encode({"exp": SAMPLE_EXP}, None, algorithm="none")
    assert decode_token(unsigned, SECRET) is None


def test_token_with_invalid_binding_claim_is_anonymous() -> None:
    encoded = jwt.encode(
        {"exp": SAMPLE_EXP, "role_bindings": {"bad": ["admin"]}}, SECRET, algorithm="HS256"
    )
    assert decode_token(encoded, SECRET) is None


def test_predefined_tokens() -> None:
    codec = TokenCodec(
        secret=SECRET,
        predefined_tokens={
            "service-secret": {"primary_namespace": "svc", "role_bindings": {"*/*": ["admin"]}},
            "broken": {"role_bindings": {"nope": ["admin"]}},
        },
    )
    token = codec.authenticate("service-secret")
    assert token is not None and token.primary_namespace == "svc"
    assert token.exp > datetime.now(UTC)
    assert codec.authenticate("broken") is None
    assert codec.authenticate("unknown") is None
    assert codec.authenticate(None) is None
    minted = codec.encode(AuthenticationToken(primary_namespace="p"))
    decoded = codec.authenticate(minted)
    assert decoded is not None and decoded.primary_namespace == "p"


# --- credential extraction ------------------------------------------------------------------------


def test_cookie_first() -> None:
    assert extract_credential({"conda-store-auth": "C"}, "Bearer B") == "C"


def test_empty_cookie_falls_through_to_header() -> None:
    assert extract_credential({"conda-store-auth": ""}, "Bearer B") == "B"


def test_invalid_cookie_still_wins_over_valid_header() -> None:
    codec = TokenCodec(secret=SECRET)
    good = codec.encode(AuthenticationToken(primary_namespace="x"))
    credential = extract_credential({"conda-store-auth": "junk"}, f"Bearer {good}")
    assert credential == "junk" and codec.authenticate(credential) is None


def test_bearer_and_scheme_case() -> None:
    assert extract_credential({}, "Bearer tok") == "tok"
    assert extract_credential({}, "bearer tok") == "tok"
    assert extract_credential({}, "Token tok") is None
    assert extract_credential({}, None) is None
    assert extract_credential({}, "") is None


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Basic", "Basic !!!", "Basic " + "bm9jb2xvbg=="]
)
def test_malformed_authorization_is_anonymous(header: str) -> None:
    codec = TokenCodec(secret=SECRET)
    credential = extract_credential({}, header)
    assert credential is None or codec.authenticate(credential) is None


def test_basic_uses_password_as_token() -> None:
    codec = TokenCodec(secret=SECRET)
    good = codec.encode(AuthenticationToken(primary_namespace="basic-user"))
    credential = extract_credential({}, basic("whoever", good))
    assert credential == good
    token = codec.authenticate(credential)
    assert token is not None and token.primary_namespace == "basic-user"
    assert extract_credential({}, basic("", "a:b")) == "a:b"


def test_custom_cookie_name() -> None:
    assert extract_credential({"other": "C"}, None, cookie_name="other") == "C"
    assert extract_credential({"conda-store-auth": "C"}, None, cookie_name="other") is None


# --- token minting --------------------------------------------------------------------------------


def login_token() -> AuthenticationToken:
    return AuthenticationToken(
        exp=SAMPLE_EXP, primary_namespace="username", role_bindings={"*/*": ["admin"]}
    )


def test_mint_anonymous_gets_authenticated_defaults() -> None:
    now = SAMPLE_EXP_DT - timedelta(days=1)
    token = mint_token(None, now=now)
    assert token.primary_namespace == "default"
    assert token.role_bindings == {"default/*": ["viewer"], "filesystem/*": ["viewer"]}
    assert token.exp == SAMPLE_EXP_DT
    assert unsigned_part(encode_token(token, SECRET)) == unsigned_part(SAMPLE_TOKEN_POST_UNAUTH)


def test_mint_anonymous_uses_configured_default_namespace() -> None:
    assert mint_token(None, default_namespace="public").primary_namespace == "public"


def test_mint_inherits_effective_bindings() -> None:
    token = mint_token(login_token())
    assert unsigned_part(encode_token(token, SECRET)) == unsigned_part(SAMPLE_TOKEN_POST_AUTH)


def test_mint_narrow() -> None:
    token = mint_token(
        login_token(), primary_namespace="default", role_bindings={"default/*": ["viewer"]}
    )
    assert unsigned_part(encode_token(token, SECRET)) == unsigned_part(SAMPLE_TOKEN_POST_NARROW)


def test_mint_subset_error_for_anonymous_escalation() -> None:
    with pytest.raises(TokenMintError) as err:
        mint_token(None, role_bindings={"*/*": ["admin"]})
    assert err.value.message == SUBSET_ERROR == str(err.value)
    assert err.value.status_code == 400


def test_mint_subset_error_for_broader_key() -> None:
    caller = AuthenticationToken(exp=SAMPLE_EXP, role_bindings={"team/*": ["admin"]})
    with pytest.raises(TokenMintError, match=SUBSET_ERROR):
        mint_token(caller, role_bindings={"*/*": ["viewer"]})
    # a narrower key under the caller's admin binding is fine
    minted = mint_token(caller, role_bindings={"team/app*": ["editor"]})
    assert minted.role_bindings == {"team/app*": ["editor"]}


def test_mint_subset_pools_permissions_across_superset_keys() -> None:
    caller = AuthenticationToken(
        exp=SAMPLE_EXP, role_bindings={"*/*": ["viewer"], "team/*": ["editor"]}
    )
    assert mint_token(caller, role_bindings={"team/x": ["editor"]}).role_bindings == {
        "team/x": ["editor"]
    }
    with pytest.raises(TokenMintError, match=SUBSET_ERROR):
        mint_token(caller, role_bindings={"team/x": ["admin"]})
    with pytest.raises(TokenMintError, match=SUBSET_ERROR):
        mint_token(caller, role_bindings={"other/x": ["editor"]})


def test_mint_new_token_db_bindings_are_checked() -> None:
    db = {"username": {}, "bob": {"default/*": ["admin"]}}
    caller = AuthenticationToken(exp=SAMPLE_EXP, primary_namespace="username")
    with pytest.raises(TokenMintError, match=SUBSET_ERROR):
        mint_token(caller, primary_namespace="bob", db_bindings_for=lambda ns: db.get(ns, {}))
    caller_bob = AuthenticationToken(exp=SAMPLE_EXP, primary_namespace="bob")
    minted = mint_token(caller_bob, db_bindings_for=lambda ns: db.get(ns, {}))
    assert minted.role_bindings["default/*"] == ["admin"]


def test_mint_expiration_rules() -> None:
    caller = login_token()
    with pytest.raises(TokenMintError) as err:
        mint_token(caller, expiration=SAMPLE_EXP_DT + timedelta(seconds=1))
    assert err.value.message == EXPIRATION_ERROR
    shorter = mint_token(caller, expiration=SAMPLE_EXP_DT - timedelta(hours=1))
    assert shorter.exp == SAMPLE_EXP_DT - timedelta(hours=1)
    assert mint_token(caller, expiration=SAMPLE_EXP_DT).exp == SAMPLE_EXP_DT
    naive = (SAMPLE_EXP_DT - timedelta(hours=1)).replace(tzinfo=None)
    assert mint_token(caller, expiration=naive).exp == SAMPLE_EXP_DT - timedelta(hours=1)


def test_mint_anonymous_expiration_beyond_one_day_fails() -> None:
    with pytest.raises(TokenMintError, match=EXPIRATION_ERROR):
        mint_token(None, expiration=datetime.now(UTC) + timedelta(days=2))


def test_mint_subset_checked_before_expiration() -> None:
    with pytest.raises(TokenMintError, match=SUBSET_ERROR):
        mint_token(
            None,
            role_bindings={"*/*": ["admin"]},
            expiration=datetime.now(UTC) + timedelta(days=9),
        )


def test_mint_rejects_invalid_key() -> None:
    with pytest.raises(ValueError):
        mint_token(login_token(), role_bindings={"nope": ["viewer"]})


def test_is_subset_bindings_direct() -> None:
    assert is_subset_bindings({"*/*": ["admin"]}, {"a/b": ["admin"], "c/*": ["viewer"]})
    assert not is_subset_bindings({"a/*": ["viewer"]}, {"a/b": ["editor"]})
    assert is_subset_bindings({}, {"a/b": []})


# --- authenticators -------------------------------------------------------------------------------


def test_dummy_authenticator() -> None:
    auth = DummyAuthenticator()
    token = auth.authenticate({"username": "username", "password": "password"})
    assert token is not None
    assert token.primary_namespace == "username"
    assert token.role_bindings == {"*/*": ["admin"]}
    assert auth.authenticate({"username": "username", "password": "wrong"}) is None
    assert auth.authenticate({"username": "u"}) is None
    assert auth.authenticate({"password": "password"}) is None


def test_dummy_authenticator_login_cookie_matches_sample() -> None:
    token = DummyAuthenticator().authenticate({"username": "username", "password": "password"})
    assert token is not None
    token = token.model_copy(update={"exp": SAMPLE_EXP_DT})
    assert unsigned_part(encode_token(token, SECRET)) == unsigned_part(SAMPLE_LOGIN_COOKIE)


def test_dummy_authenticator_empty_password_accepts_anything() -> None:
    token = DummyAuthenticator(password="").authenticate({"username": "x", "password": "y"})
    assert token is not None and token.primary_namespace == "x"


def make_oauth() -> OAuthAuthenticator:
    return OAuthAuthenticator(
        client_id="cid",
        client_secret="csecret",
        authorize_url="https://idp.example/authorize?prompt=login",
        access_token_url="https://idp.example/token",
        user_data_url="https://idp.example/userinfo",
        user_data_key="preferred_username",
        access_scope="openid profile",
    )


def test_oauth_authorization_url() -> None:
    url = make_oauth().authorization_url("https://cs.example/conda-store/oauth_callback/", "st8")
    assert url == (
        "https://idp.example/authorize?prompt=login&client_id=cid"
        "&redirect_uri=https://cs.example/conda-store/oauth_callback/"
        "&response_type=code&scope=openid%20profile&state=st8"
    )
    assert "state=" not in make_oauth().authorization_url("https://cb/")


def test_oauth_presets() -> None:
    gh = OAuthAuthenticator.github("id", "secret")
    assert gh.authorize_url == "https://github.com/login/oauth/authorize"
    assert gh.user_data_key == "login"
    assert "scope=user:email" in gh.authorization_url("https://cb/", "s")
    hub = OAuthAuthenticator.jupyterhub("id", "secret", "https://hub.example")
    assert hub.access_token_url == "https://hub.example/hub/api/oauth2/token"
    assert hub.user_data_key == "name"


def test_oauth_user_mapping() -> None:
    oauth = make_oauth()
    token = oauth.token_for_user({"preferred_username": "carol", "sub": "123"})
    assert token is not None
    assert token.primary_namespace == "carol"
    assert token.role_bindings == {"*/*": ["admin"]}
    assert oauth.token_for_user({"sub": "123"}) is None
    assert oauth.token_for_user(["not", "a", "dict"]) is None


def test_oauth_state_check() -> None:
    with pytest.raises(OAuthError) as err:
        OAuthAuthenticator.check_state("a", "b")
    assert err.value.status_code == 401
    assert err.value.message == "OAuth states do not match"
    with pytest.raises(OAuthError):
        OAuthAuthenticator.check_state(None, "b")
    OAuthAuthenticator.check_state("same", "same")
    assert OAuthAuthenticator.new_state() != OAuthAuthenticator.new_state()


class FakeTransport:
    def __init__(self, token_reply: tuple[int, Any], user_reply: tuple[int, Any]) -> None:
        self.token_reply = token_reply
        self.user_reply = user_reply
        self.calls: list[tuple[str, str, Any, Any]] = []

    async def post_form(self, url: str, data: Any, headers: Any) -> tuple[int, Any]:
        self.calls.append(("POST", url, dict(data), dict(headers)))
        return self.token_reply

    async def get_json(self, url: str, headers: Any) -> tuple[int, Any]:
        self.calls.append(("GET", url, None, dict(headers)))
        return self.user_reply


async def test_oauth_authenticate_flow() -> None:
    transport = FakeTransport((200, {"access_token": "AT"}), (200, {"preferred_username": "dave"}))
    token = await make_oauth().authenticate(
        code="CODE", state="s", expected_state="s", redirect_uri="https://cb/", transport=transport
    )
    assert token is not None and token.primary_namespace == "dave"
    post, get = transport.calls
    assert post[1] == "https://idp.example/token"
    assert post[2] == {
        "code": "CODE",
        "grant_type": "authorization_code",
        "client_id": "cid",
        "client_secret": "csecret",
        "redirect_uri": "https://cb/",
    }
    assert post[3] == {"Accept": "application/json"}
    assert get[1] == "https://idp.example/userinfo"
    assert get[3] == {"Authorization": "Bearer AT"}


async def test_oauth_authenticate_failures() -> None:
    oauth = make_oauth()
    refused = FakeTransport((400, {"error": "bad_code"}), (200, {}))
    assert (
        await oauth.authenticate(
            code="C", state="s", expected_state="s", redirect_uri="r", transport=refused
        )
        is None
    )
    assert len(refused.calls) == 1
    no_user = FakeTransport((200, {"access_token": "AT"}), (401, None))
    assert (
        await oauth.authenticate(
            code="C", state="s", expected_state="s", redirect_uri="r", transport=no_user
        )
        is None
    )
    with pytest.raises(OAuthError):
        await oauth.authenticate(
            code="C", state="x", expected_state="s", redirect_uri="r", transport=no_user
        )
