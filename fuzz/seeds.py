#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/seeds/<target>/.

Bodies and queries are the spec vectors of the unit tests: every raw string literal r#"…"# of
shared/protocol (sources and tests) that is a JSON object or a V1 query, plus a few hand-written
inputs per target. Multi-argument targets join their fields with 0xFF (see fuzz/src/lib.rs).
Re-run after adding vectors: `python3 fuzz/seeds.py`. Seeds are small and committed; what the
fuzzer finds goes to fuzz/corpus/ (not committed).
"""
import hashlib
import pathlib
import re
import shutil

ROOT = pathlib.Path(__file__).resolve().parent
PROTOCOL = ROOT.parent / "shared" / "protocol"
SEP = b"\xff"

literals = []
for path in sorted(list(PROTOCOL.glob("src/*.rs")) + list(PROTOCOL.glob("tests/*.rs"))):
    for m in re.finditer(r'r#"(.*?)"#', path.read_text(), re.S):
        text = m.group(1)
        if "{{" in text or "}}" in text:  # a format! template, not a vector
            continue
        literals.append(text)

bodies = sorted({t for t in literals if t.lstrip().startswith("{")})
queries = sorted({t for t in literals if "activity=" in t and not t.lstrip().startswith("{")})
queries += [
    "activity=newInstance&businessId=61e834ba-7b97-4418-b8f7-e5345137278c&customerId=68cbc86abc2018ab880d92f36422fa0e&expireTime=20200727153156&orderId=CS1906666666ABCDE&productId=00301-666666-0--0&testFlag=1&timeStamp=20200727073711903",
    "activity=refreshInstance&expireTime=20180725000000&instanceId=03pf80c2bae96vc49b80b917bea776d7&orderId=HWS001014ED483AA1E8&timeStamp=20170725025113409&testFlag=1",
    "activity=instanceStatus&instanceId=huaweitest123456&instanceStatus=FREEZE&testFlag=1&timeStamp=20230327070251713",
    "activity=queryInstance&instanceId=ebc28eb6-4606-4098-b4bd-c201c99a0654%2Cfe28e27e-1157-4105-8592-24cc9488db10&testFlag=1&timeStamp=20230327065233980",
    "activity=getLicense&businessId=b1&customerId=c1&orderId=CS1&productId=P1&timeStamp=20170621185532100",
    "activity=upgrade&instanceId=I&orderId=CS-UP&skuCode=S2&productId=P2&amount=50&saasExtendParams=W3sibmFtZSI6ImEiLCJ2YWx1ZSI6ImIifV0%3D&testFlag=1&timeStamp=20170725025113409",
    "activity=newInstance&mobilePhone=Q6Ymc7bVXCMnRmTh+kTeHW0YX3LYhp1dEzGJZhL4fBWg%3D&timeStamp=20170725025113409&authToken=AAAA%2BBBB%3D",
]

KEY = b"test-access-key-123"
NONCE = b"50D83FDECAED6CCD8EF597F2A577950527928BA287D04E6036E92B2806FD17DA"
TS = b"1680508066618"
BASIC_SIG = b"180f5821c295923fc04bd6b4ed0121cc182c351e8e5fe1052a026db9aced85ce"
KIT_SIG = b"7942de36be79466e6152bd09323b92f3630b2b5cf94b62f8206e8b892f7e4660"
SPEC_BODY = (
    b'{"activity":"newInstance","businessId":"87b94795-0603-4e24-8ae5-69420d60e3c8",'
    b'"orderId":"CS2211181819B4LVS","orderLineId":"CS2211181819B4LVS-000001","testFlag":"0"}'
)
V1_POST = b'{"instanceId":"i-1","tenantId":"t-1","tenantCode":"c","name":"n","flag":1,"testFlag":1,"timeStamp":"20230327070251713"}'


def join(*fields):
    return SEP.join(f if isinstance(f, bytes) else f.encode() for f in fields)


json_bodies = [b.encode() for b in bodies] + [SPEC_BODY, V1_POST]
targets = {
    "canonical": json_bodies,
    "basic_request": json_bodies,
    "license_and_notify": json_bodies,
    "kit_request": json_bodies,
    "legacy": [q.encode() for q in queries],
    "signatures": [
        join(KEY, b"previous-key", NONCE, TS, BASIC_SIG, SPEC_BODY),
        join(b"current-key", KEY, NONCE, TS, KIT_SIG, SPEC_BODY),
        join(KEY, KEY, NONCE, TS, BASIC_SIG.upper(), b'{"b":null,"a":"\\u00e9"}'),
        join(KEY, b"", b"", b"", b'sign_type="HMAC-SHA256", signature="AAAA"', b"{}"),
    ]
    + [join(KEY, b"k2", NONCE, TS, BASIC_SIG, b) for b in json_bodies[:12]],
    "v1_auth": [join(KEY, b"k2", q, b"", V1_POST) for q in queries]
    + [join(b"k1", KEY, b"", b"w0+RoBv0d2Jf3+Gx0yqTMQZ3wjuXQbT/Ly8VkIq3ofQ=", V1_POST)],
    "timestamps": [
        b"20170621185532100",
        b"20221224194509",
        b"2023-10-27 10:30:15 z",
        b"2024-02-29 23:59:59Z",
        b"1680508066618",
        b"1680508066",
        b"99991231235959999",
        b"00000101000000000",
        b"\x00" * 8 + b"\xff" * 8 + b"\x7f" * 8,
    ],
    "aes": [
        join(b"legacy-key", b"0123456789abcdef", b"hello@example.com"),
        join(b"k", b"ABCDEFGHIJKLMNOP", b"ABCDEFGHIJKLMNOPq2mC2MmtTaqUt1OU5TbRRQ=="),
        join(b"", b"short", b""),
    ],
    "client_secret": [
        (PROTOCOL / "tests" / "fixtures" / f).read_bytes().strip()
        for f in sorted(p.name for p in (PROTOCOL / "tests" / "fixtures").glob("*.b64"))
    ]
    + [(ROOT / "keys" / "fuzz_rsa1024_secret.b64").read_bytes().strip(), b"A" * 171 + b"="]
    + [b"", b"====", b"AAAA\nAAAA", b"-_-_"],
    "answer": [
        join(b"\x00", b"success.", b"instanceId", b"87b94795", KEY),
        join(b"\x02", "参数错误 \u0001 \U0001F600".encode(), b"memo", b"\"\\/", b""),
        join(b"\x05", b"x" * 300, b"resultMsg", b"v", KEY),
    ],
}

for name, seeds in targets.items():
    d = ROOT / "seeds" / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for s in seeds:
        (d / hashlib.sha1(s).hexdigest()[:16]).write_bytes(s)
    print(f"{name}: {len(seeds)} seeds")
