"""region_code, parse_regions and parse_route on ship-to/ship-from strings."""

import pytest

from dnm.normalize import NormalizationError, Regions, parse_regions, parse_route, region_code


@pytest.mark.parametrize(
    ("name", "code"),
    [
        *[
            (n, "WW")
            for n in ["Worldwide", "World Wide", "WW", "World", "Everywhere", "worldwide", "WORLDWIDE"]
        ],
        *[(n, "US") for n in ["United States", "USA", "US", "U.S.A.", "U.S.", "United States of America"]],
        *[(n, "GB") for n in ["United Kingdom", "UK", "Great Britain", "England", "GB", "GBR"]],
        ("European Union", "EU"),
        ("EU", "EU"),
        ("Europe", "EUROPE"),
        ("EUROPE", "EUROPE"),
        *[
            (n, "NORTH_AMERICA")
            for n in ["North America", "NorthAmerica", "NORTH AMERICA", "North America(C)"]
        ],
        *[(n, "NORTH_AMERICA") for n in ["na (c)", "NA (C)", "NA", "na"]],
        ("South America", "SOUTH_AMERICA"),
        ("Asia", "ASIA"),
        ("Africa", "AFRICA"),
        ("Oceania", "OCEANIA"),
        # Namibia stays reachable by name and alpha-3; bare NA means North America (module docstring).
        ("Namibia", "NA"),
        ("NAM", "NA"),
        ("SA", "SA"),  # Saudi Arabia, not South America
        ("CHINA", "CN"),
        ("GERMANY", "DE"),
        ("Germany", "DE"),
        ("DE", "DE"),
        ("DEU", "DE"),
        ("Korea, Republic of", "KR"),
        ("Iran, Islamic Republic of", "IR"),
        ("Holland", "NL"),
        ("The Netherlands", "NL"),
        ("Netherlands", "NL"),
        ("Czech Republic", "CZ"),
        ("Czechia", "CZ"),
        ("Russia", "RU"),
        ("Russian Federation", "RU"),
        ("South Korea", "KR"),
        ("Turkey", "TR"),
        ("Türkiye", "TR"),
        ("Côte d'Ivoire", "CI"),
        ("Cote d'Ivoire", "CI"),
        ("Viet Nam", "VN"),
        ("Vietnam", "VN"),
        ("Bonaire, Sint Eustatius and Saba", "BQ"),
    ],
)
def test_region_code(name: str, code: str) -> None:
    assert region_code(name) == code


@pytest.mark.parametrize(
    "name", ["Narnia", "in", "de", "Korea", "North America(C) extra", "Germany(C)", "", "840"]
)
def test_region_code_rejects(name: str) -> None:
    with pytest.raises(
        NormalizationError, match=r"cannot read a region in .*: expected a country name or code"
    ):
        region_code(name)


@pytest.mark.parametrize(
    ("shown", "codes", "excluded"),
    [
        ("Worldwide", ("WW",), ()),
        ("Worldwide, Worldwide", ("WW",), ()),
        ("United States, Worldwide", ("US", "WW"), ()),
        (
            "World Wide , Europe , Netherlands , United Kingdom , Germany",
            ("WW", "EUROPE", "NL", "GB", "DE"),
            (),
        ),
        ("DE;FR|NL / IT", ("DE", "FR", "NL", "IT"), ()),
        ("Germany, Korea, Republic of, France", ("DE", "KR", "FR"), ()),
        ("Korea, Republic of, Iran, Islamic Republic of", ("KR", "IR"), ()),
        ("USA, UK", ("US", "GB"), ()),
        ("EU/UK Only", ("EU", "GB"), ()),
        ("(ONLY UK)", ("GB",), ()),
        ("EU & UK", ("EU", "GB"), ()),
        ("Germany (DE)", ("DE",), ()),
        ("Ships to: Worldwide", ("WW",), ()),
        ("Ships from United States", ("US",), ()),
        ("Origin Country : Netherlands", ("NL",), ()),
        ("Worldwide except Australia, Canada", ("WW",), ("AU", "CA")),
        ("Worldwide (except: AU, CA)", ("WW",), ("AU", "CA")),
        ("WW excl. US", ("WW",), ("US",)),
        ("Worldwide excluding the Netherlands", ("WW",), ("NL",)),
        ("We DO NOT ship to: CANADA, AUSTRALIA", (), ("CA", "AU")),
        ("Not shipping to: Germany, France", (), ("DE", "FR")),
        ("Europe, but not to Sweden", ("EUROPE",), ("SE",)),
        ("We don't ship to USA", (), ("US",)),
        ("Worldwide except US, US", ("WW",), ("US",)),
    ],
)
def test_parse_regions(shown: str, codes: tuple[str, ...], excluded: tuple[str, ...]) -> None:
    assert parse_regions(shown) == Regions(codes, excluded, shown)


def test_exclusively_is_not_an_exclusion() -> None:
    with pytest.raises(NormalizationError):  # "exclusively" is not "excl."; the piece is unknown
        parse_regions("Ships exclusively to Germany")


@pytest.mark.parametrize(
    ("shown", "piece"),
    [
        ("Narnia", "cannot read a region in 'Narnia': expected"),
        ("Germany, Narnia, France", "cannot read a region in 'Narnia' \\(in 'Germany, Narnia, France'\\)"),
        ("N/A", "cannot read a region in 'N'"),
        ("", "cannot read regions in ''"),
        ("Worldwide except", None),  # nothing excluded is fine: WW
    ],
)
def test_parse_regions_errors_name_the_piece(shown: str, piece: str | None) -> None:
    if piece is None:
        assert parse_regions(shown).codes == ("WW",)
        return
    with pytest.raises(NormalizationError, match=piece):
        parse_regions(shown)


@pytest.mark.parametrize(
    ("shown", "origin", "destination"),
    [
        ("WW → WW", ("WW",), ("WW",)),
        ("DE → WW", ("DE",), ("WW",)),
        ("NL⟶WW, EU", ("NL",), ("WW", "EU")),
        ("United States → United States", ("US",), ("US",)),
        ("FR to WW", ("FR",), ("WW",)),
        ("UK -> EU", ("GB",), ("EU",)),
        ("DE => Worldwide except US", ("DE",), ("WW",)),
    ],
)
def test_parse_route(shown: str, origin: tuple[str, ...], destination: tuple[str, ...]) -> None:
    ships_from, ships_to = parse_route(shown)
    assert (ships_from.codes, ships_to.codes) == (origin, destination)


def test_route_keeps_exclusions_and_raw_sides() -> None:
    ships_from, ships_to = parse_route("DE → Worldwide except US")
    assert ships_to == Regions(("WW",), ("US",), "Worldwide except US")
    assert ships_from.raw == "DE"


@pytest.mark.parametrize("shown", ["Germany", "", "→ WW", "DE → Narnia"])
def test_parse_route_errors(shown: str) -> None:
    with pytest.raises(NormalizationError):
        parse_route(shown)
