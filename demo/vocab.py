"""Invented words the demo world is written in: categories, products, names, descriptions, feedback.

Everything here is made up. No real market, vendor, buyer, onion address or person is named; the
shapes (title patterns, unit pricing, category depth, feedback tone) follow real markets as
described in shared/research/market-anatomy.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    """A kind of good: how its titles read, how it is measured and what it costs."""

    key: str
    titles: tuple[str, ...]  # str.format templates over {q}, {name}, {pct}
    names: tuple[str, ...]
    unit: str | None  # base unit of {q}; None for digital goods sold per item
    quantities: tuple[int, ...]
    usd_per_unit: tuple[float, float]
    per_unit_labels: tuple[tuple[str, int], ...] = ()  # (shown unit, base units in it), for "/g" prices
    digital: bool = False


PRODUCTS: tuple[Product, ...] = (
    Product(
        "weed",
        ("{q}g {name} - Indoor AAA+", "{name} | {q}g | Top Shelf Buds", "{q} grams {name} (organic)"),
        ("Polar Haze", "Velvet Kush", "Lemon Drift", "Granite OG", "Blue Marrow", "Static Widow"),
        "g",
        (5, 10, 28, 56, 100),
        (5.5, 11.0),
        (("g", 1),),
    ),
    Product(
        "hash",
        ("{q}g {name} Hash", "{name} pollen - {q}g", "{q}g Double Zero {name}"),
        ("Amber Slab", "Tangier Gold", "Dry Sift Brick", "Cream Temple"),
        "g",
        (5, 10, 25, 50),
        (6.0, 12.0),
        (("g", 1),),
    ),
    Product(
        "concentrates",
        ("{q}g {name} Shatter", "{name} Wax {q}g - lab tested"),
        ("Glass Sunset", "Honey Comb", "Citrus Sap"),
        "g",
        (1, 3, 7),
        (25.0, 45.0),
    ),
    Product(
        "edibles",
        ("{q}x {name} Gummies 25mg", "{name} chocolate bar ({q} pcs)"),
        ("Sour Orbit", "Night Berry", "Mellow Mint"),
        "pcs",
        (10, 20, 50),
        (2.0, 4.5),
    ),
    Product(
        "cocaine",
        ("{q}g {name} Flake {pct}%", "{name} {pct}% - {q}g uncut", "{q}g Fishscale ({name}) {pct}%"),
        ("Andean", "Peruvian Pearl", "Bolivian Crown", "Lima Gloss", "Valle Alto"),
        "g",
        (1, 2, 5, 10, 28),
        (55.0, 105.0),
        (("g", 1),),
    ),
    Product(
        "speed",
        ("{q}g Amphetamine Paste {pct}%", "{q}g Speed {name} - strong", "Amphetamine Sulphate {q}g ({name})"),
        ("Dutch Base", "Pink Paste", "Dry White"),
        "g",
        (5, 10, 25, 50, 100),
        (6.0, 16.0),
        (("g", 1),),
    ),
    Product(
        "meth",
        ("{q}g {name} Crystal Shards", "{name} Ice {q}g - clear"),
        ("Glacier", "Clear Sky", "Diamond Line"),
        "g",
        (1, 3, 7, 14, 28),
        (30.0, 70.0),
    ),
    Product(
        "mdma",
        ("{q}g MDMA Crystal {pct}% ({name})", "{name} Champagne MDMA - {q}g"),
        ("Champagne Rock", "Brown Sugar", "Honey Crystal"),
        "g",
        (1, 5, 10, 25),
        (18.0, 38.0),
        (("g", 1),),
    ),
    Product(
        "xtc",
        ("{q}x {name} 220mg XTC", "{name} pills x{q} - lab tested", "{q}x {name} (blue) 180mg"),
        ("Red Bulldog", "Tesla Coil", "Green Owl", "Golden Key", "Pink Rabbit"),
        "pill",
        (10, 25, 50, 100, 500),
        (2.5, 7.5),
        (("10 pills", 10), ("pill", 1)),
    ),
    Product(
        "lsd",
        ("{q}x {name} 150ug blotter", "{name} tabs 200ug ({q}x)", "LSD {q} tabs - {name} print"),
        ("Hoffmann Garden", "Lantern", "Moon Orchid", "Paper Kite"),
        "tab",
        (5, 10, 25, 100),
        (4.0, 10.0),
        (("tab", 1),),
    ),
    Product(
        "mushrooms",
        ("{q}g Dried {name}", "{name} mushrooms {q}g (high potency)"),
        ("Golden Teacher", "Forest Mosaic", "Cloud Cap"),
        "g",
        (7, 14, 28, 100),
        (5.0, 10.0),
        (("g", 1),),
    ),
    Product(
        "dmt",
        ("{q}g {name} DMT Crystal", "DMT {q}g freebase ({name})"),
        ("Jungle Root", "Yellow Spice"),
        "g",
        (1, 2, 5),
        (60.0, 110.0),
    ),
    Product(
        "benzos",
        ("{q}x {name} 2mg bars", "{name} 10mg x{q} (blister)"),
        ("Calmora", "Relaxon", "Somnex"),
        "pill",
        (20, 50, 100, 500),
        (0.9, 3.0),
        (("10 pills", 10),),
    ),
    Product(
        "ketamine",
        ("{q}g Ketamine {name} Shards", "{name} K needles {q}g"),
        ("Horse Glass", "Snowfield", "Crystal Needle"),
        "g",
        (1, 5, 10, 28),
        (18.0, 35.0),
        (("g", 1),),
    ),
    Product(
        "opioids",
        ("{q}x {name} 30mg", "{name} 10/325 x{q}"),
        ("Oxyline", "Tramalon", "Codexa"),
        "pill",
        (10, 20, 50),
        (8.0, 25.0),
    ),
    Product(
        "prescription",
        ("{q}x {name} 200mg", "{name} 100mg tabs x{q}"),
        ("Modavigil", "Alertix", "Vigorel"),
        "pill",
        (30, 60, 100),
        (0.8, 2.5),
        (("10 pills", 10),),
    ),
    Product(
        "ebooks",
        ("{name} - PDF guide", "The {name} Handbook (ebook)", "{name} collection - 40 ebooks"),
        ("OpSec Basics", "Privacy at Home", "Crypto Wallet Hygiene", "Home Growing 101"),
        None,
        (1,),
        (4.0, 25.0),
        digital=True,
    ),
    Product(
        "software",
        ("{name} lifetime license", "{name} Pro key - all platforms", "{name} (cracked) + updates"),
        ("Photonic Studio", "CleanDisk", "VaultPass", "Orbit VPN"),
        None,
        (1,),
        (5.0, 40.0),
        digital=True,
    ),
    Product(
        "accounts",
        ("{name} premium account - 12 months", "{name} family plan (1 year)"),
        ("StreamNova", "TuneCloud", "PixelPress", "ReadMore+"),
        None,
        (1,),
        (3.0, 18.0),
        digital=True,
    ),
    Product(
        "paraphernalia",
        ("{q}x {name} bags", "{name} digital scale 0.01g", "{name} grinder 4-part"),
        ("Mylar", "Zip", "Stealth", "Pocket"),
        "pcs",
        (1, 50, 100),
        (0.2, 1.5),
    ),
)
PRODUCT_BY_KEY = {p.key: p for p in PRODUCTS}
# How often each product appears (weights line up with PRODUCTS).
PRODUCT_WEIGHTS = (14, 6, 3, 3, 10, 6, 3, 5, 6, 4, 3, 1, 4, 3, 2, 2, 3, 3, 3, 2)

# Category path of each product on each market: the two markets organise the same goods differently.
CATEGORY_PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "hollowmere": {
        "weed": ("Drugs", "Cannabis", "Buds & Flowers"),
        "hash": ("Drugs", "Cannabis", "Hash"),
        "concentrates": ("Drugs", "Cannabis", "Concentrates"),
        "edibles": ("Drugs", "Cannabis", "Edibles"),
        "cocaine": ("Drugs", "Stimulants", "Cocaine"),
        "speed": ("Drugs", "Stimulants", "Speed"),
        "meth": ("Drugs", "Stimulants", "Meth"),
        "mdma": ("Drugs", "Ecstasy", "MDMA"),
        "xtc": ("Drugs", "Ecstasy", "Pills"),
        "lsd": ("Drugs", "Psychedelics", "LSD"),
        "mushrooms": ("Drugs", "Psychedelics", "Mushrooms"),
        "dmt": ("Drugs", "Psychedelics", "DMT"),
        "benzos": ("Drugs", "Benzos"),
        "ketamine": ("Drugs", "Dissociatives", "Ketamine"),
        "opioids": ("Drugs", "Opioids"),
        "prescription": ("Drugs", "Prescription"),
        "ebooks": ("Digital Goods", "E-Books"),
        "software": ("Digital Goods", "Software"),
        "accounts": ("Digital Goods", "Accounts"),
        "paraphernalia": ("Miscellaneous", "Paraphernalia"),
    },
    "copperline": {
        "weed": ("Drugs & Chemicals", "Cannabis & Hash"),
        "hash": ("Drugs & Chemicals", "Cannabis & Hash"),
        "concentrates": ("Drugs & Chemicals", "Cannabis & Hash"),
        "edibles": ("Drugs & Chemicals", "Edibles"),
        "cocaine": ("Drugs & Chemicals", "Stimulants"),
        "speed": ("Drugs & Chemicals", "Stimulants"),
        "meth": ("Drugs & Chemicals", "Stimulants"),
        "mdma": ("Drugs & Chemicals", "Ecstasy & MDMA"),
        "xtc": ("Drugs & Chemicals", "Ecstasy & MDMA"),
        "lsd": ("Drugs & Chemicals", "Psychedelics"),
        "mushrooms": ("Drugs & Chemicals", "Psychedelics"),
        "dmt": ("Drugs & Chemicals", "Psychedelics"),
        "benzos": ("Drugs & Chemicals", "Benzodiazepines"),
        "ketamine": ("Drugs & Chemicals", "Dissociatives"),
        "opioids": ("Drugs & Chemicals", "Opioids"),
        "prescription": ("Drugs & Chemicals", "Prescription Drugs"),
        "ebooks": ("Digital Products", "eBooks & Guides"),
        "software": ("Digital Products", "Software"),
        "accounts": ("Digital Products", "Accounts & Subscriptions"),
        "paraphernalia": ("Other", "Paraphernalia"),
    },
}

# Vendor handles are built from these; styles vary (CamelCase, snake_case, CAPS, digits).
# fmt: off
NAME_HEADS = (
    "Nordic", "Pharma", "Green", "Alpine", "Velvet", "Silent", "Dutch", "Crystal", "Lunar", "Frost",
    "Amber", "Cobalt", "Misty", "Urban", "Royal", "Hidden", "Rapid", "Golden", "Cloud", "Pixel",
    "Quiet", "Iron", "Coastal", "Solar", "Maple", "Thames", "Rhine", "Baltic", "Andes", "Kiwi",
    "Harbor", "Polar", "Ember", "Willow", "Onyx", "Saffron", "Tundra", "Zephyr", "Copper", "Delta",
)
NAME_TAILS = (
    "Leaf", "Kingdom", "Labs", "Express", "Garden", "Supply", "Direct", "Chem", "Bros", "Store",
    "Connect", "Depot", "Farm", "Works", "Pharm", "Dealer", "Trade", "Market", "House", "Club",
)
NAME_SYLLABLES = ("pha", "mor", "ra", "zen", "tri", "vox", "ka", "lu", "nex", "dra", "qui", "sol", "mi")

BUYER_SYLLABLES = (
    "al", "be", "co", "da", "el", "fi", "go", "ha", "ix", "jo", "ke", "lo", "mu", "no", "pe", "sa",
)
# fmt: on

PRODUCT_BLURBS: dict[str, tuple[str, ...]] = {
    "default": (
        "Same batch we have been selling for months, customers keep coming back for it.",
        "Top quality, weighed on a calibrated scale, you always get what you pay for.",
        "Lab tested batch, results available on request.",
    ),
    "digital": (
        "Instant delivery after the order is accepted.",
        "Delivered as a download link in the order chat.",
        "Works worldwide, no shipping needed.",
    ),
}
STEALTH_LINES = (
    "Vacuum sealed twice, smell proof, professional stealth.",
    "Shipped in a business-style envelope with a printed label.",
    "Orders placed before 14:00 ship the same day.",
    "We do not ship on weekends or bank holidays.",
)
POLICY_LINES = (
    "No refunds for wrong addresses. Encrypt your address with our PGP key!",
    "Reships are 50% for first time buyers, 100% for repeat customers.",
    "Please finalize when your order arrives and leave honest feedback.",
    "Read our profile terms before ordering.",
    "Bulk discounts available, message us.",
)

FEEDBACK_TEXT: dict[int, tuple[str, ...]] = {
    5: (
        "Great stealth, fast delivery. A+++",
        "Top quality as always, thanks!",
        "Arrived in 3 days, exactly as described.",
        "Best vendor on the market <3",
        "10/10 would order again",
        "Quick   shipping,\n  perfect stealth & great comms",
        "Qualität top, danke!",
        "All good.",
    ),
    4: (
        "Good product, shipping took a bit longer than stated.",
        "Solid, slightly under weight but vendor made it right.",
        "Nice, stealth could be better.",
    ),
    3: ("Average quality. Took two weeks.", "It's okay, not what I expected from the pictures."),
    2: ("Slow shipping and no reply to messages.", "Weak product, won't reorder."),
    1: ("Never arrived. Vendor ignores messages.", "SCAM!!! do not order", "Wrong item sent, no reship."),
}

SHIPPING_METHODS = (
    ("Standard", (5, 7, 10)),
    ("Tracked", (3, 4, 5)),
    ("Express", (1, 2)),
    ("Next day", (1,)),
    ("Economy", (14, 21)),
    ("Stealth+ Tracked", (5, 6)),
)

PHISHING_WARNING = (
    "Phishing warning: you are not on the official site. If you can read this text, the page was "
    "loaded through a proxy that steals logins. Close it and use a mirror from the signed list."
)
MIRROR_NOTE = "Verified mirrors (signed with the staff key, check before you log in):"
