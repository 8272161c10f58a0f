"""clean_vendor_name on the decorated names markets print."""

import pytest

from dnm.normalize import NormalizationError, clean_vendor_name


@pytest.mark.parametrize(
    ("shown", "name"),
    [
        ("PHARMORA (1000) ( 4.97 )", "PHARMORA"),
        ("@john-doe 5", "john-doe"),
        ("DrParagon (100%)", "DrParagon"),
        ("Sold by ChillTimes (385)", "ChillTimes"),
        ("Sold by X - 160 sold since April 20, 2019", "X"),
        ("Vendor: pharma_kingdom", "pharma_kingdom"),
        ("Seller: Dr.Green", "Dr.Green"),
        ("Vendor labelrouge", "labelrouge"),
        ("Username HighSpeed (680) ( 4.90 )", "HighSpeed"),
        ("Posted by Nordic-Leaf", "Nordic-Leaf"),
        ("name [Vendor]", "name"),
        ("[Vendor] name", "name"),
        ("★ name ★", "name"),
        ("name Lvl 5", "name"),
        ("name Vendor level 4", "name"),
        ("name (Level 4)", "name"),
        ("ChillTimes (385) Vendor level 5 Trust level 5 138 (5.0) 89 (4.95)", "ChillTimes"),
        ("Sankhara(21) (5.00 )", "Sankhara"),
        ("ezinpharma 100%", "ezinpharma"),
        ("HighSpeed 4.96/5", "HighSpeed"),
        ("  pharma_kingdom\u00a0 ", "pharma_kingdom"),
        ("john5", "john5"),  # a number glued to the name is part of it
        ("Dr Green (12)", "Dr Green"),
        ("Vendor", "Vendor"),  # a label alone is somebody's name
        ("MiXeD.CaSe_99", "MiXeD.CaSe_99"),
    ],
)
def test_clean_vendor_name(shown: str, name: str) -> None:
    assert clean_vendor_name(shown) == name


@pytest.mark.parametrize("shown", ["", "   ", "(1000) ( 4.97 )", "★ ★", "Sold by (385)", "x" * 500])
def test_clean_vendor_name_rejects(shown: str) -> None:
    with pytest.raises(NormalizationError, match="cannot read a vendor name"):
        clean_vendor_name(shown)
