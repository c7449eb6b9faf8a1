from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from consentry import signing


@pytest.fixture
def fresh_keys(settings, tmp_path):
    settings.STATE_DIR = tmp_path
    (tmp_path / "secrets").mkdir()
    settings.CONSENTRY_SIGNING_KEY = signing.ed25519_pem()
    (tmp_path / "secrets" / "consentry_signing_key").write_text(settings.CONSENTRY_SIGNING_KEY)
    signing.keyring.cache_clear()
    yield
    signing.keyring.cache_clear()


def test_a_jws_verifies_with_the_published_jwk(fresh_keys, client):
    token = signing.sign_jws({"sub": "p_1"})
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    published = client.get("/.well-known/jwks.json").json()["keys"]
    [jwk] = [k for k in published if k["kid"] == header["kid"]]
    key = jwt.PyJWK(jwk).key
    assert jwt.decode(token, key, algorithms=["EdDSA"])["sub"] == "p_1"


def test_rotation_keeps_old_signatures_verifiable_and_published(fresh_keys, client):
    old_token = signing.sign_jws({"sub": "old"})
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    new_kid = signing.rotate_local_key("signing")
    assert new_kid != old_kid
    assert jwt.get_unverified_header(signing.sign_jws({"sub": "new"}))["kid"] == new_kid
    assert signing.verify_jws(old_token)["sub"] == "old"
    kids = {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    assert {old_kid, new_kid} <= kids


def test_a_token_signed_by_an_unknown_key_is_refused(fresh_keys):
    stranger = jwt.encode({"sub": "x"}, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "nope"})
    with pytest.raises(jwt.InvalidTokenError):
        signing.verify_jws(stranger)


def test_thumbprint_matches_rfc7638_example_shape(fresh_keys):
    kid = signing.keyring().kid
    assert len(kid) == 43 and "=" not in kid
