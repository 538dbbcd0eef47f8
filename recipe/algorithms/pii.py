"""Personal data and secrets in text, found by patterns and validated (datatrove's PII formatter
and StarCoder's redaction are the models): e-mail addresses, IP addresses (v4 and v6, public
ones only: `ipaddress` says which), secrets with a known shape (cloud and API keys, tokens,
private key blocks), phone numbers and payment card numbers (Luhn-checked).

`Redactor(kinds, replace).redact(text)` -> (text with each finding replaced, [(kind, value)]).
A replacement is a tag (`<EMAIL>`) or, with `replace="fake"`, a value reserved for examples
(RFC 2606 domains, RFC 5737 addresses, 555-01xx numbers, a test card number) picked by a hash
of the value, so one value becomes the same stand-in wherever it is, on any engine, and a
second pass finds nothing to replace. E-mails at reserved example domains are not personal
(`user@example.com` in an instruction about regular expressions stays).
"""
from __future__ import annotations

import hashlib
import ipaddress
import re

KINDS = ("email", "ip", "key", "phone", "credit_card")
DEFAULT_KINDS = ("email", "ip", "key")
TAGS = {"email": "<EMAIL>", "ip": "<IP_ADDRESS>", "key": "<KEY>", "phone": "<PHONE>", "credit_card": "<CREDIT_CARD>"}
FAKES = {
    "email": ("email@example.com", "firstname.lastname@example.org"),
    "ip": ("192.0.2.1", "198.51.100.7", "203.0.113.42"),  # RFC 5737: documentation only, never global
    "phone": ("555-0100", "555-0123", "555-0175"),  # North American numbers reserved for fiction
    "credit_card": ("4111 1111 1111 1111",),  # the well-known test card
    "key": ("<KEY>",),  # no stand-in looks like a key without being taken for one
}
RESERVED_DOMAINS = ("example.com", "example.org", "example.net", "example", "test", "invalid", "localhost")

# the local part as addresses are written in practice (letters, digits, . _ % + -, starting with a
# letter or digit): RFC 5322 also allows quotes, and `'you@gmail.com'` in code lost its quote
_EMAIL = (r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*"
          r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\b")
_IPV4 = r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d|\w)"
_IPV6 = r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
# shapes published by the issuers (and used by secret scanners such as gitleaks)
_KEYS = "|".join((
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",                       # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",                   # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
    r"\bglpat-[A-Za-z0-9_-]{20}\b",                         # GitLab
    r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}\b",            # OpenAI, Anthropic
    r"\bhf_[A-Za-z]{34}\b",                                 # Hugging Face
    r"\bAIza[0-9A-Za-z_-]{35}\b",                           # Google API key
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",                   # Slack
    r"\b[rs]k_live_[0-9A-Za-z]{24,}\b",                     # Stripe
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY(?: BLOCK)?-----",
))
# an international number (+ and a country code) or a North American one with separators;
# bare digit runs (years, quantities, ids) are not phone numbers here
_PHONE = (r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){2,4}"
          r"|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w-])")
# a card number as cards print it (four groups of four, Amex's 4-6-5) or one run of 13-19
# digits, with an issuer's prefix (Visa, Mastercard, Amex, Discover, JCB, Diners) and a valid
# Luhn digit: on P3, any run of 13-19 digits passing Luhn took years ("2005-2008 2009 2010")
_CARD = (r"(?<![\w-])(?:(?:4\d{3}|5[1-5]\d{2}|2[2-7]\d{2}|6011|65\d{2}|35\d{2})(?:[ -]?\d{4}){3}(?:\d{1,3})?"
         r"|3[47]\d{2}[ -]?\d{6}[ -]?\d{5}|3(?:0[0-5]|[68]\d)\d[ -]?\d{6}[ -]?\d{4})(?![\w-])")
PATTERNS = {"email": _EMAIL, "ip4": _IPV4, "ip6": _IPV6, "key": _KEYS, "phone": _PHONE, "credit_card": _CARD}
PARTS = {"email": ("email",), "ip": ("ip4", "ip6"), "key": ("key",), "phone": ("phone",), "credit_card": ("credit_card",)}
KIND_OF = {part: kind for kind, parts in PARTS.items() for part in parts}


_UNICAST6 = ipaddress.ip_network("2000::/3")


def _public_ip(value: str) -> bool:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:  # 999.1.1.1, a leading zero, a time such as 12:30:45
        return False
    # IPv6: global unicast only (Python calls `a::b`, a C++ name's shape, global)
    return ip.is_global and (ip.version == 4 or ip in _UNICAST6)


def _personal_email(value: str) -> bool:
    domain = value.rsplit("@", 1)[1].lower()
    return not any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS)


def _luhn(value: str) -> bool:
    digits = [int(c) for c in value if c.isdigit()]
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _phone(value: str) -> bool:
    return 7 <= sum(c.isdigit() for c in value) <= 15


VALID = {"email": _personal_email, "ip": _public_ip, "phone": _phone, "credit_card": _luhn}


_KEY_PREFIXES = ("AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "sk-", "hf_",
                 "AIza", "xox", "k_live_", "PRIVATE KEY")
_IP4_HINT = re.compile(r"\d\.\d{1,3}\.\d")
_IP6_HINT = re.compile(r"[0-9A-Fa-f]:[0-9A-Fa-f:]|::")
_PHONE_HINT = re.compile(r"\+\d|\(\d{3}\)|\d{3}[.-]\d{3}")
_CARD_HINT = re.compile(r"\d{4}[ -]?\d{4}")
# cheap tests (a substring, a short pattern) that a text must pass before a kind's full pattern
# runs over it: Python's regex engine tries every alternative at every position, and on P3's
# 60M characters the key shapes alone took 13 s, IPv6's 5 s
HINTS = {"email": lambda t: "@" in t, "ip4": lambda t: _IP4_HINT.search(t) is not None,
         "ip6": lambda t: ":" in t and _IP6_HINT.search(t) is not None,
         "key": lambda t: any(p in t for p in _KEY_PREFIXES),
         "phone": lambda t: _PHONE_HINT.search(t) is not None, "credit_card": lambda t: _CARD_HINT.search(t) is not None}


class Redactor:
    def __init__(self, kinds=DEFAULT_KINDS, replace: str = "tag"):
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; kinds: {', '.join(KINDS)}")
        self.kinds, self.replace = tuple(k for k in KINDS if k in kinds), replace
        self.parts = tuple(p for k in self.kinds for p in PARTS[k])
        self._rx: dict[tuple, re.Pattern] = {}

    def pattern(self, parts: tuple) -> re.Pattern:
        """One pass over the text for these patterns, as named groups, earlier kinds first where
        two match at one place (an e-mail's digits are not a phone number)."""
        if parts not in self._rx:
            self._rx[parts] = re.compile("|".join(f"(?P<{p}>{PATTERNS[p]})" for p in parts))
        return self._rx[parts]

    def stand_in(self, kind: str, value: str) -> str:
        if self.replace == "tag":
            return TAGS[kind]
        options = FAKES[kind]
        return options[int(hashlib.md5(value.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) % len(options)]

    def redact(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """`text` with each finding replaced, and the findings (kind, value) in text order."""
        parts = tuple(p for p in self.parts if HINTS[p](text)) if text else ()
        if not parts:
            return text, []
        found: list[tuple[str, str]] = []

        def sub(m: re.Match) -> str:
            kind, value = KIND_OF[m.lastgroup], m.group(0)
            ok = VALID.get(kind)
            if ok is not None and not ok(value):
                return value
            found.append((kind, value))
            return self.stand_in(kind, value)
        return self.pattern(parts).sub(sub, text), found


def masked(value: str) -> str:
    """A finding as a reason may show it: enough to recognise, too little to use."""
    v = " ".join(value.split())
    return v if len(v) <= 4 else f"{v[:2]}{'*' * min(len(v) - 4, 8)}{v[-2:]}"
