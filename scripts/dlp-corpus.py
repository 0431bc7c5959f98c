#!/usr/bin/env python3
"""Writes shared/tests/fixtures/dlp-corpus.jsonl: disguised card numbers, IBANs and SSNs
(positives) and look-alikes that are none of them (negatives), for `shared/tests/dlp_corpus.rs`.

Deterministic (fixed seed): run it again after changing it, and commit both.
Each line: {"text", "kind": "card" | "iban" | "ssn" | null, "leak": what must not survive
redaction (the middle of the number as written), "how": the disguise or look-alike}.
"""
import json
import random
from pathlib import Path

rng = random.Random(20261203)


def luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        n = body + check
        total = 0
        for i, d in enumerate(reversed(n)):
            v = int(d)
            if i % 2 == 1:
                v = v * 2 - 9 if v > 4 else v * 2
            total += v
        if total % 10 == 0:
            return n
    raise AssertionError


def luhn_ok(n: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(n)):
        v = int(d)
        if i % 2 == 1:
            v = v * 2 - 9 if v > 4 else v * 2
        total += v
    return total % 10 == 0


def luhn_broken(prefix: str, length: int) -> str:
    n = luhn_complete(prefix, length)
    return n[:-1] + str((int(n[-1]) + rng.randint(1, 9)) % 10)


# Brand prefixes, lengths and how the brand's cards are printed.
BRANDS = [
    ("4", 16, [4, 4, 4, 4]),  # Visa
    ("4", 13, [4, 4, 5]),  # Visa, old
    ("51", 16, [4, 4, 4, 4]),  # Mastercard
    ("2221", 16, [4, 4, 4, 4]),  # Mastercard 2-series
    ("34", 15, [4, 6, 5]),  # Amex
    ("37", 15, [4, 6, 5]),  # Amex
    ("6011", 16, [4, 4, 4, 4]),  # Discover
    ("36", 14, [4, 6, 4]),  # Diners
    ("3528", 16, [4, 4, 4, 4]),  # JCB
    ("62", 19, [6, 13]),  # UnionPay
    ("6759", 18, [4, 4, 4, 4, 2]),  # Maestro
]

FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}
ARABIC = {str(d): chr(0x0660 + d) for d in range(10)}
DEVANAGARI = {str(d): chr(0x0966 + d) for d in range(10)}
SEPARATORS = [" ", "-", ".", "  ", "\u00a0", "\u2009", "\u202f", "\u2013", " - ", "\n"]


def group(number: str, sizes):
    out, at = [], 0
    for s in sizes:
        out.append(number[at : at + s])
        at += s
    return out


def written(groups, sep_for):
    text = groups[0]
    for i, g in enumerate(groups[1:]):
        text += sep_for(i) + g
    return text


def middle(groups, sep_for):
    """The written form of the inner groups: what must be gone after redaction."""
    if len(groups) >= 3:
        return written(groups[1:-1], lambda i: sep_for(i + 1))
    return groups[1][:8] if len(groups) == 2 else groups[0][4:12]


# How a card is disguised: the separator between its groups (None: a random one each time),
# the digits it is written in (None: ASCII), and the name of the disguise.
CARD_STYLES = [
    (" ", None, "spaces"),
    ("-", None, "hyphens"),
    (".", None, "dots"),
    ("  ", None, "double spaces"),
    ("\u00a0", None, "no-break spaces"),
    (None, None, "mixed separators"),
    ("\u200b", None, "zero-width spaces"),
    (" ", FULLWIDTH, "full-width digits"),
    (" ", ARABIC, "Arabic-Indic digits"),
    ("-", DEVANAGARI, "Devanagari digits"),
    ("", None, "unbroken"),
    ("\u2009", None, "thin spaces"),
    ("/", None, "slashes"),
    (" ", None, "one digit per space"),
]


def card_positive(i: int):
    prefix, length, sizes = BRANDS[i % len(BRANDS)]
    n = luhn_complete(prefix, length)
    separator, digits, how = CARD_STYLES[i % len(CARD_STYLES)]
    if separator is None:
        seps = [rng.choice(SEPARATORS) for _ in range(6)]
        sep = lambda k: seps[k]
    else:
        sep = lambda _: separator
    groups = list(n) if how == "one digit per space" else group(n, sizes)
    if digits:
        groups = ["".join(digits[c] for c in g) for g in groups]
    number = written(groups, sep)
    leak = middle(groups, sep) if how not in ("unbroken", "one digit per space") else number[8:24]
    contexts = [
        "card {} exp 12/27",
        "my card is {} and the CVV 123",
        "{} 09/28 cvv 321",
        "ref 7 {}",
        "pay with {}, thanks",
        "Tarjeta: {}. Caduca 11/29",
        "carte n° {} merci",
        "Karte {} bitte belasten",
        "({})",
        "número do cartão {} ok?",
        "card#{}",
        "use {} for EUR 500",
    ]
    text = contexts[(i // 12) % len(contexts)].format(number)
    return {"text": text, "kind": "card", "leak": leak, "how": f"card {how}"}


IBAN_COUNTRIES = [("DE", 18), ("GB", 18), ("FR", 23), ("ES", 20), ("NL", 14), ("IT", 23), ("BE", 12), ("CH", 17), ("AT", 16), ("PL", 24)]


def iban_check(country: str, bban: str) -> str:
    s = bban + country + "00"
    num = "".join(str(int(c, 36)) for c in s)
    return f"{98 - int(num) % 97:02d}"


def iban_positive(i: int):
    country, blen = IBAN_COUNTRIES[i % len(IBAN_COUNTRIES)]
    if country in ("GB", "NL"):
        bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4)) + "".join(
            rng.choice("0123456789") for _ in range(blen - 4)
        )
    elif country in ("FR", "IT"):
        bban = "".join(rng.choice("0123456789") for _ in range(blen - 2)) + "".join(
            rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(2)
        )
    else:
        bban = "".join(rng.choice("0123456789") for _ in range(blen))
    iban = country + iban_check(country, bban) + bban
    style = i % 6
    groups = [iban[k : k + 4] for k in range(0, len(iban), 4)]
    if style == 0:
        number, how = " ".join(groups), "groups of four"
    elif style == 1:
        number, how = iban, "unbroken"
    elif style == 2:
        number, how = " ".join(groups).lower(), "lower case"
    elif style == 3:
        number, how = "\u00a0".join(groups), "no-break spaces"
    elif style == 4:
        number, how = "-".join(groups), "hyphens"
    else:
        number, how = "".join(chr(0xFF21 + ord(c) - 65) if c.isalpha() else FULLWIDTH[c] for c in " ".join(groups).replace(" ", "")), "full-width"
    leak = number[6:14]
    contexts = ["IBAN {} please", "pay to {} by Friday", "iban: {}", "Überweisung an {} EUR 500", "virement sur {}, merci", "{}"]
    text = contexts[(i // 6) % len(contexts)].format(number)
    return {"text": text, "kind": "iban", "leak": leak, "how": f"iban {how}"}


def ssn_positive(i: int):
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    ssn = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
    style = i % 4
    g = [ssn[:3], ssn[3:5], ssn[5:]]
    if style == 0:
        number, how = "-".join(g), "hyphens"
    elif style == 1:
        number, how = " ".join(g), "spaces"
    elif style == 2:
        number, how = "-".join("".join(FULLWIDTH[c] for c in part) for part in g), "full-width"
    else:
        number, how = ".".join(g), "dots"
    contexts = ["SSN {}", "my social is {} thanks", "ssn: {} dob 1980-01-02", "({})"]
    return {"text": contexts[(i // 4) % len(contexts)].format(number), "kind": "ssn", "leak": number[:6], "how": f"ssn {how}"}


def negative(i: int):
    kind = i % 20
    d = lambda n: "".join(rng.choice("0123456789") for _ in range(n))
    if kind == 0:
        return "order " + d(rng.choice([20, 21, 22, 24])), "long order number"
    if kind == 1:
        return "order #" + d(rng.choice([8, 10, 11, 12])), "short order number"
    if kind == 2:
        n = luhn_broken(rng.choice(["4", "51", "6011"]), 16)
        return "ref " + " ".join(group(n, [4, 4, 4, 4])), "grouped 16 digits failing Luhn"
    if kind == 3:
        n = luhn_broken(rng.choice(["4", "37"]), 16)
        return "id " + n, "unbroken 16 digits failing Luhn"
    if kind == 4:
        return rng.choice(["call +44 7700 900", "tel +33 6 12 34 ", "phone +1 415-555-", "ring 020 7946 "]) + d(3) + d(1), "phone number"
    if kind == 5:
        return f"from 20{rng.randint(10, 30)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} to 20{rng.randint(10, 30)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "dates"
    if kind == 6:
        return f"due {rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.20{rng.randint(20, 30)} at {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}", "date and time"
    if kind == 7:
        return f"total EUR {rng.randint(1, 999)}.{rng.randint(100, 999)}.{rng.randint(100, 999)},{rng.randint(0, 99):02d}", "amount, dots"
    if kind == 8:
        return f"${rng.randint(1, 999)},{rng.randint(100, 999)},{rng.randint(100, 999)}.{rng.randint(0, 99):02d} refunded", "amount, commas"
    if kind == 9:
        return "tracking 1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16)), "UPS tracking id"
    if kind == 10:
        return f"parcel {d(4)} {d(4)} {d(4)}", "FedEx tracking, 12 digits"
    if kind == 11:
        return f"invoice {rng.randint(2020, 2030)} {d(4)} {d(4)} for {rng.randint(1, 9)} items", "invoice number"
    if kind == 12:
        bban = d(18)
        check = iban_check("DE", bban)
        bad = f"{(int(check) + rng.randint(1, 50)) % 97 + 2:02d}"
        if bad == check:
            bad = f"{(int(check) + 1) % 97 + 2:02d}"
        return "IBAN DE" + bad + bban, "IBAN failing mod 97"
    if kind == 13:
        return f"SSN 000-{rng.randint(10, 99)}-{d(4)}" if i % 2 else f"SSN 666-{rng.randint(10, 99)}-{d(4)}", "SSN out of range"
    if kind == 14:
        return f"room {rng.randint(100, 999)}, floor {rng.randint(1, 40)}, {rng.randint(1, 300)} m², code {d(6)}", "small numbers"
    if kind == 15:
        return f"version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)} build {d(9)}", "version and build"
    if kind == 16:
        n = "9400" + d(18)
        return "USPS " + " ".join(n[k : k + 4] for k in range(0, 22, 4)), "USPS tracking, 22 digits in fours"
    if kind == 18:
        dates = " ".join(f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2020, 2030)}" for _ in range(2))
        return f"due {dates}", "dates with slashes"
    if kind == 19:
        scores = " ".join(str(rng.randint(0, 12)) for _ in range(rng.randint(8, 30)))
        return f"scores {scores}", "small numbers with spaces"
    return f"call {d(3)} {d(3)} {d(4)} or {d(3)} {d(3)} {d(4)}", "two phone numbers in a row"


def main():
    lines = []
    for i in range(132):
        lines.append(card_positive(i))
    for i in range(60):
        lines.append(iban_positive(i))
    for i in range(24):
        lines.append(ssn_positive(i))
    seen = set()
    i = 0
    while sum(1 for l in lines if l["kind"] is None) < 224:
        text, how = negative(i)
        i += 1
        if text in seen:
            continue
        seen.add(text)
        lines.append({"text": text, "kind": None, "leak": None, "how": how})
    out = Path(__file__).resolve().parent.parent / "shared/tests/fixtures/dlp-corpus.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(l, ensure_ascii=False) + "\n" for l in lines), encoding="utf-8")
    print(f"{out}: {sum(1 for l in lines if l['kind'])} positives, {sum(1 for l in lines if not l['kind'])} negatives")


if __name__ == "__main__":
    main()
