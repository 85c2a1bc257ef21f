"""The gateway's call metadata: the HTTP client's own address goes on as x-forwarded-for (so
identity's per-address limits see browsers, not the gateway); a header the client sent itself
is never passed through."""

from services.gateway import calls


def test_the_client_address_is_forwarded_and_a_forged_header_is_not():
    headers = {"authorization": "Bearer t", "x-forwarded-for": "10.9.9.9"}
    pairs = dict(calls.metadata(headers, "req-1", None, "203.0.113.7"))
    assert pairs["x-forwarded-for"] == "203.0.113.7"
    assert pairs["authorization"] == "Bearer t" and pairs["x-request-id"] == "req-1"
    assert "x-forwarded-for" not in dict(calls.metadata(headers, "req-2"))
