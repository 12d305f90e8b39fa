"""Hand-made SASL lines: the abuses of the `sasl` attack and the `spoof-uid` claim.

The D-Bus specification ("Authentication Protocol") has a client send one nul byte, then
CRLF-terminated ASCII commands (AUTH, DATA, BEGIN, ...), EXTERNAL's initial response being the
claimed uid in hex. Each abuse below breaks one rule of that exchange; a bus should reject or
drop the connection and go on serving everyone else.
"""

from __future__ import annotations

SASL_ABUSES: dict[str, bytes] = {
    "no-nul": b"AUTH EXTERNAL 30\r\n",  # the nul byte missing
    "long-line": b"\0AUTH " + b"A" * 20000 + b"\r\n",  # past any sane line limit
    "unknown-command": b"\0FROBNICATE\r\n",
    "begin-first": b"\0BEGIN\r\n",  # BEGIN before authenticating
    "bad-hex": b"\0AUTH EXTERNAL zz\r\n",  # an initial response that is not hex
    "many-rejects": b"\0" + b"AUTH EXTERNAL 393939393939\r\n" * 10,
    "no-begin": b"\0AUTH EXTERNAL\r\nDATA\r\n",  # authenticated, never BEGIN
    # CVE-2019-12749 (dbus-daemon < 1.12.16): DBUS_COOKIE_SHA1 claiming to be another user
    # (here: nobody), the shape of the attack on a keyring the claimant can write.
    "cookie-other-user": b"\0AUTH DBUS_COOKIE_SHA1 " + b"nobody".hex().encode() + b"\r\n",
}


def external_claim(uid: int) -> bytes:
    """The nul byte and AUTH EXTERNAL claiming `uid`, which is not the socket's (SO_PEERCRED)
    uid when spoofing: the bus must check the claim against the kernel's credentials."""
    return b"\0AUTH EXTERNAL " + str(uid).encode().hex().encode() + b"\r\n"
