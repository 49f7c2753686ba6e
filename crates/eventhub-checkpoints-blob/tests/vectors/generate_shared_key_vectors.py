#!/usr/bin/env python3
"""Regenerate shared_key_vectors.json: independent SharedKey test vectors for the
Azure Blob REST client in this crate.

The independent implementation is the official Python SDK's signer,
azure.storage.blob._shared.authentication.SharedKeyCredentialPolicy, from
azure-storage-blob==12.31.1 (with azure-core==1.41.0). The two pre-2015-02-21
cases are the exception: the SDK does not implement the old Content-Length rule,
so for those cases this script builds the string-to-sign itself and signs it with
the openssl CLI (see PRE2015 below).

How to run (this was run once to produce shared_key_vectors.json next to this file):

    python3 -m venv /tmp/sk-vectors/venv
    /tmp/sk-vectors/venv/bin/pip install azure-storage-blob==12.31.1
    /tmp/sk-vectors/venv/bin/python generate_shared_key_vectors.py [OUTPUT.json]

The default output is shared_key_vectors.json in the same directory as this script.
Requirements: bash, openssl and base64 on PATH (openssl 3.0.19 was used).

For each SDK case the script:
  1. builds an azure.core.rest.HttpRequest (the request type the SDK's clients
     use) with the case's URL and ordered headers, wraps it in a PipelineRequest,
     and calls SharedKeyCredentialPolicy.on_request(). The string-to-sign is taken
     from the SDK's own code path by wrapping the policy instance's
     _add_authorization_header(request, string_to_sign). The Authorization
     header comes from the header the SDK set;
  2. sends the same request through a real azure.core Pipeline with that policy
     and a transport that only records the request, and checks that the
     Authorization header sent matches step 1;
  3. rebuilds the string-to-sign from the SDK's helper methods (_get_verb,
     _get_headers, _get_canonicalized_headers, _get_canonicalized_resource,
     _get_canonicalized_resource_query), repeats step 1 with the legacy
     azure.core.pipeline.transport.HttpRequest, and re-signs the string-to-sign
     with the openssl CLI. Every result must match, or the script exits non-zero.

The script calls private SDK methods and works with the pinned version above; other
versions may differ.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
from urllib.parse import quote

import azure.core
from azure.core.pipeline import Pipeline, PipelineContext, PipelineRequest
from azure.core.pipeline.transport import HttpRequest as LegacyHttpRequest
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest
from azure.storage.blob import VERSION as BLOB_SDK_VERSION
from azure.storage.blob._shared import sign_string
from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy

EXPECTED_SDK_VERSION = "12.31.1"

# Azurite / storage-emulator well-known account.
EMU_ACCOUNT = "devstoreaccount1"
EMU_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
EMU_BASE = "http://127.0.0.1:10000/devstoreaccount1"

# Host-style account. The key is a made-up test key:
# base64(sha512(b"myaccount shared key test vector")).
HOST_ACCOUNT = "myaccount"
HOST_KEY = base64.b64encode(hashlib.sha512(b"myaccount shared key test vector").digest()).decode()
HOST_BASE = "https://myaccount.blob.core.windows.net"

DATE = "Sun, 29 Nov 2026 02:00:00 GMT"
V = "2021-12-02"
CONTAINER = "checkpoints"
OWNERSHIP_BLOB = "ns.servicebus.windows.net/hub/$default/ownership/0"
CHECKPOINT_BLOB = "ns.servicebus.windows.net/hub/$default/checkpoint/0"
SPECIAL_BLOB = "ns/hub/$Default/checkpoint/0 \u00fc"  # '$', a space and U+00FC
OWNER_ID = "3f2b8c1e-4d5a-4b6c-9e7f-0a1b2c3d4e5f"
ETAG = '"0x8DC1234567890AB"'
LIST_PREFIX = "ns.servicebus.windows.net/hub/$default/checkpoint/"
LIST_MARKER = "2!88!MDAwMDI1IW5zL2h1Yi8kZGVmYXVsdC9jaGVja3BvaW50LzE3IQ=="


def blob_url(base, container, blob, query=""):
    # Same path encoding as azure-storage-blob (_blob_client_helpers._format_url):
    # quote(container), quote(blob, safe="~/"): UTF-8, upper-case hex.
    return f"{base}/{quote(container)}/{quote(blob, safe='~/')}{query}"


def container_url(base, container, query=""):
    return f"{base}/{quote(container)}{query}"


def q(value):
    # Query values are encoded like the SDK does (urlencode/quote_plus, safe=""):
    # '/', '$', '!', '=' are all percent-encoded.
    return quote(value, safe="")


def put_blob_headers(version, extra=None):
    h = [
        ["x-ms-version", version],
        ["x-ms-date", DATE],
        ["x-ms-blob-type", "BlockBlob"],
        ["x-ms-meta-ownerid", OWNER_ID],
        ["If-None-Match", "*"],
        ["Content-Length", "0"],
    ]
    return h + (extra or [])


EMU = (EMU_ACCOUNT, EMU_KEY)
HOST = (HOST_ACCOUNT, HOST_KEY)

CASES = [
    dict(
        name="create_container",
        creds=EMU,
        method="PUT",
        url=container_url(EMU_BASE, CONTAINER, "?restype=container"),
        headers=[["x-ms-version", V], ["x-ms-date", DATE], ["Content-Length", "0"]],
    ),
    dict(
        name="put_blob_empty_if_none_match",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, OWNERSHIP_BLOB),
        headers=put_blob_headers(V),
        note="Content-Length: 0 is an empty line in the string-to-sign (version >= 2015-02-21).",
    ),
    dict(
        name="put_blob_if_match_checkpoint_metadata",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, CHECKPOINT_BLOB),
        headers=[
            ["x-ms-version", V],
            ["x-ms-date", DATE],
            ["x-ms-blob-type", "BlockBlob"],
            ["x-ms-meta-offset", "8589934592"],
            ["x-ms-meta-sequencenumber", "4294967296"],
            ["If-Match", ETAG],
            ["Content-Length", "0"],
        ],
    ),
    dict(
        name="set_blob_metadata_if_match",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, OWNERSHIP_BLOB, "?comp=metadata"),
        headers=[
            ["x-ms-version", V],
            ["x-ms-date", DATE],
            ["x-ms-meta-ownerid", OWNER_ID],
            ["If-Match", ETAG],
            ["Content-Length", "0"],
        ],
    ),
    dict(
        name="delete_blob_if_match",
        creds=EMU,
        method="DELETE",
        url=blob_url(EMU_BASE, CONTAINER, OWNERSHIP_BLOB),
        headers=[["x-ms-version", V], ["x-ms-date", DATE], ["If-Match", ETAG]],
        note="No Content-Length header is sent.",
    ),
    dict(
        name="list_blobs_prefix_metadata_marker",
        creds=EMU,
        method="GET",
        url=container_url(
            EMU_BASE,
            CONTAINER,
            "?restype=container&comp=list"
            f"&prefix={q(LIST_PREFIX)}&include=metadata&maxresults=5000&marker={q(LIST_MARKER)}",
        ),
        headers=[["x-ms-version", V], ["x-ms-date", DATE]],
        note="Query values are percent-decoded in the string-to-sign; parameters are "
        "sorted by name and names are lower-cased.",
    ),
    dict(
        name="list_blobs_first_page",
        creds=EMU,
        method="GET",
        url=container_url(
            EMU_BASE,
            CONTAINER,
            f"?restype=container&comp=list&prefix={q(LIST_PREFIX)}&include=metadata&maxresults=5000",
        ),
        headers=[["x-ms-version", V], ["x-ms-date", DATE]],
    ),
    dict(
        name="put_blob_name_dollar_space_non_ascii",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, SPECIAL_BLOB),
        headers=put_blob_headers(V),
        note="Blob name 'ns/hub/$Default/checkpoint/0 \u00fc'. The canonicalized resource "
        "uses the URL path exactly as sent (percent-encoded, upper-case hex), not decoded.",
    ),
    dict(
        name="put_blob_version_2017_11_09",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, OWNERSHIP_BLOB),
        headers=put_blob_headers("2017-11-09"),
    ),
    dict(
        name="put_blob_version_2019_02_02",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, OWNERSHIP_BLOB),
        headers=put_blob_headers("2019-02-02"),
    ),
    dict(
        name="put_blob_mixed_case_metadata_names",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, CHECKPOINT_BLOB),
        headers=[
            ["x-ms-version", V],
            ["x-ms-date", DATE],
            ["x-ms-blob-type", "BlockBlob"],
            ["x-ms-meta-OwnerId", OWNER_ID],
            ["x-ms-meta-SequenceNumber", "42"],
            ["x-ms-meta-offset", "1024"],
            ["Content-Length", "0"],
        ],
        note="Names are lower-cased before sorting: offset < ownerid < sequencenumber. "
        "Sorting the original-case names byte-wise would give OwnerId, SequenceNumber, offset.",
    ),
    dict(
        name="put_blob_header_value_whitespace",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, CHECKPOINT_BLOB),
        headers=[
            ["x-ms-version", V],
            ["x-ms-date", DATE],
            ["x-ms-blob-type", "BlockBlob"],
            ["x-ms-meta-note", "  padded  value  "],
            ["Content-Length", "0"],
        ],
        note="The SDK signs header values verbatim: no trimming and no collapsing of "
        "inner whitespace. HTTP/1.1 receivers drop leading/trailing whitespace from "
        "field values, so a server probably sees 'padded  value', and a request signed "
        "like this may be rejected. Use this vector only to check that the client "
        "matches the SDK; the client should not send values with leading/trailing whitespace.",
    ),
    dict(
        name="put_blob_nonempty_body",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, CHECKPOINT_BLOB),
        headers=[
            ["x-ms-version", V],
            ["x-ms-date", DATE],
            ["x-ms-blob-type", "BlockBlob"],
            ["Content-Type", "application/octet-stream"],
            ["Content-Length", "11"],
        ],
        note="A non-zero Content-Length is signed as-is.",
    ),
    dict(
        name="pre2015_put_blob_2009_09_19",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, OWNERSHIP_BLOB),
        headers=put_blob_headers("2009-09-19"),
        pre2015=True,
    ),
    dict(
        name="pre2015_set_blob_metadata_2009_09_19",
        creds=EMU,
        method="PUT",
        url=blob_url(EMU_BASE, CONTAINER, OWNERSHIP_BLOB, "?comp=metadata"),
        headers=[
            ["x-ms-version", "2009-09-19"],
            ["x-ms-date", DATE],
            ["x-ms-meta-ownerid", OWNER_ID],
            ["If-Match", ETAG],
            ["Content-Length", "0"],
        ],
        pre2015=True,
    ),
    dict(
        name="host_style_put_blob",
        creds=HOST,
        method="PUT",
        url=blob_url(HOST_BASE, CONTAINER, OWNERSHIP_BLOB),
        headers=put_blob_headers(V),
        note="Host-style URL: the account name appears once in the canonicalized resource.",
    ),
    dict(
        name="host_style_list_blobs",
        creds=HOST,
        method="GET",
        url=container_url(
            HOST_BASE,
            CONTAINER,
            "?restype=container&comp=list"
            f"&prefix={q(LIST_PREFIX)}&include=metadata&maxresults=5000&marker={q(LIST_MARKER)}",
        ),
        headers=[["x-ms-version", V], ["x-ms-date", DATE]],
    ),
]

# The header list is copied from SharedKeyCredentialPolicy.on_request in 12.31.1. It is
# used only for the step-3 cross-check; the vectors come from on_request itself.
# The SDK writes "byte_range" where the documented list has "Range", so a Range header
# is never signed by the SDK. None of these cases sends a Range header.
SDK_HEADERS_TO_SIGN = [
    "content-encoding", "content-language", "content-length", "content-md5",
    "content-type", "date", "if-modified-since", "if-match", "if-none-match",
    "if-unmodified-since", "byte_range",
]


class _Captured(Exception):
    pass


class CaptureTransport(HttpTransport):
    """Records the request that would go on the wire, then stops the pipeline."""

    def __init__(self):
        self.sent = None

    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def open(self):
        pass

    def close(self):
        pass

    def send(self, request, **kwargs):
        self.sent = request
        raise _Captured()


def fail(msg):
    sys.exit(f"MISMATCH: {msg}")


def sdk_sign(case, request_cls=HttpRequest):
    """Runs the SDK policy on the request; returns (string_to_sign, authorization, helper_sts)."""
    account, key = case["creds"]
    req = request_cls(case["method"], case["url"], headers=dict(case["headers"]))
    if [list(kv) for kv in req.headers.items()] != case["headers"]:
        fail(f"{case['name']}: request headers changed by HttpRequest: {list(req.headers.items())}")
    policy = SharedKeyCredentialPolicy(account, key)
    captured = {}
    original = policy._add_authorization_header

    def spy(request, string_to_sign):
        captured["sts"] = string_to_sign
        return original(request, string_to_sign)

    policy._add_authorization_header = spy
    preq = PipelineRequest(req, PipelineContext(None))
    policy.on_request(preq)
    auth = req.headers["Authorization"]

    # Step 3: rebuild the string-to-sign from the SDK's helper methods.
    helper_sts = (
        policy._get_verb(preq)
        + policy._get_headers(preq, SDK_HEADERS_TO_SIGN)
        + policy._get_canonicalized_headers(preq)
        + policy._get_canonicalized_resource(preq)
        + policy._get_canonicalized_resource_query(preq)
    )
    return captured["sts"], auth, helper_sts


def pipeline_sign(case):
    """Sends the request through a real azure.core Pipeline; returns the Authorization sent."""
    account, key = case["creds"]
    transport = CaptureTransport()
    pipeline = Pipeline(transport=transport, policies=[SharedKeyCredentialPolicy(account, key)])
    req = HttpRequest(case["method"], case["url"], headers=dict(case["headers"]))
    try:
        pipeline.run(req)
    except _Captured:
        pass
    sent = transport.sent
    if sent is None or sent.url != case["url"]:
        fail(f"{case['name']}: pipeline did not send the expected URL")
    return sent.headers["Authorization"]


def openssl_sign(key_b64, string_to_sign):
    hexkey = base64.b64decode(key_b64).hex()
    env = dict(os.environ, STS=string_to_sign, HEXKEY=hexkey)
    out = subprocess.run(
        [
            "bash", "-c",
            'printf \'%s\' "$STS" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$HEXKEY" -binary | base64',
        ],
        env=env, check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


# --- pre-2015-02-21 rule, written out by hand (not using the SDK) -------------------------
# Same string-to-sign layout as later versions (2009-09-19 and later), except that
# Content-Length is signed as it is sent, even when it is "0".
STANDARD_HEADERS = [
    "content-encoding", "content-language", "content-length", "content-md5",
    "content-type", "date", "if-modified-since", "if-match", "if-none-match",
    "if-unmodified-since", "range",
]


def pre2015_string_to_sign(case):
    account, _ = case["creds"]
    hdrs = {}
    for name, value in case["headers"]:
        hdrs[name.lower()] = value
    lines = [case["method"]] + [hdrs.get(h, "") for h in STANDARD_HEADERS]
    sts = "\n".join(lines) + "\n"
    xms = sorted((n, v) for n, v in hdrs.items() if n.startswith("x-ms-"))
    sts += "".join(f"{n}:{v}\n" for n, v in xms)
    rest = case["url"].split("://", 1)[1]
    path_and_query = rest[rest.index("/"):]
    path, _, query = path_and_query.partition("?")
    sts += f"/{account}{path}"
    if query:
        # Same rule as later versions; the pre-2015 cases only use "comp=metadata".
        params = sorted(p.partition("=")[::2] for p in query.split("&"))
        sts += "".join(f"\n{n.lower()}:{v}" for n, v in params)
    return sts


def main():
    if BLOB_SDK_VERSION != EXPECTED_SDK_VERSION:
        print(f"warning: azure-storage-blob {BLOB_SDK_VERSION} installed, "
              f"vectors were produced with {EXPECTED_SDK_VERSION}", file=sys.stderr)
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "shared_key_vectors.json")

    cases_out = []
    for case in CASES:
        account, key = case["creds"]
        sts, auth, helper_sts = sdk_sign(case)
        legacy_sts, legacy_auth, _ = sdk_sign(case, LegacyHttpRequest)
        if helper_sts != sts or legacy_sts != sts or legacy_auth != auth:
            fail(f"{case['name']}: SDK helper/legacy string-to-sign differs")
        if pipeline_sign(case) != auth:
            fail(f"{case['name']}: pipeline Authorization differs from on_request")
        if auth != f"SharedKey {account}:{sign_string(key, sts)}":
            fail(f"{case['name']}: sign_string differs")
        if auth != f"SharedKey {account}:{openssl_sign(key, sts)}":
            fail(f"{case['name']}: openssl HMAC differs from SDK")

        entry = {
            "name": case["name"],
            "method": case["method"],
            "url": case["url"],
            "headers": case["headers"],
        }
        if account != EMU_ACCOUNT:
            entry["account_name"] = account
            entry["account_key"] = key

        if case.get("pre2015"):
            hand_sts = pre2015_string_to_sign(case)
            # Check: the only difference from the SDK output is the Content-Length line.
            sdk_lines, hand_lines = sts.split("\n"), hand_sts.split("\n")
            if sdk_lines[3] != "" or hand_lines[3] != "0" or sdk_lines[:3] + sdk_lines[4:] != hand_lines[:3] + hand_lines[4:]:
                fail(f"{case['name']}: hand-built pre-2015 string-to-sign differs from SDK beyond Content-Length")
            entry["string_to_sign"] = hand_sts
            entry["authorization"] = f"SharedKey {account}:{openssl_sign(key, hand_sts)}"
            entry["generator_note"] = "string-to-sign by hand, signature by openssl"
            entry["note"] = ("x-ms-version 2009-09-19 is before 2015-02-21, so Content-Length: 0 "
                             "is signed as '0'. The SDK always signs it as an empty line; "
                             "otherwise the SDK string-to-sign is identical.")
        else:
            entry["string_to_sign"] = sts
            entry["authorization"] = auth
            if "note" in case:
                entry["note"] = case["note"]
        cases_out.append(entry)

    doc = {
        "generator": f"azure-storage-blob {BLOB_SDK_VERSION} SharedKeyCredentialPolicy "
                     f"(azure-core {azure.core.__version__}) (+ openssl for pre-2015-02-21 cases)",
        "account_name": EMU_ACCOUNT,
        "account_key": EMU_KEY,
        "notes": [
            "Cases that carry their own account_name/account_key (host-style URLs) use those.",
            "Requests always send x-ms-date and never Date, so the Date line is empty.",
            "Canonicalized resource = '/' + account + URL path as sent (still percent-encoded). "
            "For path-style emulator URLs the path starts with /devstoreaccount1, so the account appears twice.",
        ],
        "cases": cases_out,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {len(cases_out)} cases to {out_path}")


if __name__ == "__main__":
    main()
